"""What expires: a gateway instance's token (`TokenExpiresAt`) and a subscription (`ExpirationDate`, from ARM).
Pure functions of a row, shared by the count rows' `Expiring` lists and the `expiring` question."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.kinds import Kind

EXPIRY_COLUMNS: dict[Kind, str] = {Kind.GATEWAY_INSTANCE: "TokenExpiresAt", Kind.SUBSCRIPTION: "ExpirationDate"}
_COLUMN_OF = {kind.value: column for kind, column in EXPIRY_COLUMNS.items()}
EXPIRY_FAMILIES: tuple[Kind, ...] = tuple(dict.fromkeys(kind.family for kind in EXPIRY_COLUMNS))  # the partitions they live in


def expiry_of(row: dict[str, Any] | None) -> datetime | None:
    """When a live row expires (its token, or the subscription itself), else None."""
    if not row or row.get("IsDeleted"):
        return None
    column = _COLUMN_OF.get(str(row.get("Kind")))
    value = row.get(column) if column else None
    return value if isinstance(value, datetime) else None
