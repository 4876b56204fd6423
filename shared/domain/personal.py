"""Personal data and the roles that may see it: one masking function for every answer, JSON and page alike.

Personal data is named by key, wherever it sits in an answer: a user row's columns, an audit record's caller, and the
same keys inside a history record's `Values` (a JSON text of the columns an event or a read changed). Ids are not
personal data here (`OwnerId`, `callerObjectId`, `callerAppId`): they let a reader with `Inventory.Read` follow a
resource to its owner without learning who the owner is."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    READ = "Inventory.Read"  # everything but personal data, which is masked
    PERSONAL_DATA = "Inventory.PersonalData.Read"  # personal data too


# Column names (rows, -o json of the command) and JSON keys (the audit record's, docs/schema.md lists both).
PERSONAL_KEYS = frozenset({
    "Email", "FirstName", "LastName", "email", "firstName", "lastName",
    "OwnerName", "OwnerEmail", "ownerName", "ownerEmail",
    "CallerName", "CallerUpn", "ClientIp", "callerName", "callerUpn", "clientIp",
})
MASKED = "(masked)"  # a string where the value was, so that a page shows that something is held back


def parse_role(text: str, setting: str) -> Role:
    """A role's name (case-insensitive), or ValueError naming the setting and the roles it takes."""
    for role in Role:
        if text.strip().lower() == role.value.lower():
            return role
    raise ValueError(f"{setting} is {text.strip()[:60]!r}; it takes {' or '.join(r.value for r in Role)}")


def mask(document: Any, role: Role) -> Any:
    """The document as `role` may see it: for Inventory.Read every personal value (not null) replaced by MASKED, also
    inside JSON texts; the document itself is never changed (a cached row stays whole)."""
    return document if role is Role.PERSONAL_DATA else _masked(document)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASKED if k in PERSONAL_KEYS and v is not None and v != "" else _masked(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if isinstance(value, str) and value.startswith("{") and any(k in value for k in PERSONAL_KEYS):
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        return json.dumps(_masked(inner), sort_keys=True) if isinstance(inner, dict) else value
    return value
