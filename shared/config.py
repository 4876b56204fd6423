"""App settings, read once. docs/settings.md lists every one."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")


@dataclass(frozen=True)
class Settings:
    inventory_table: str = "ApimInventory"
    history_table: str = "ApimInventoryHistory"
    rejected_table: str = "ApimInventoryRejected"
    storage_retry_total: int = 3
    conflict_retries: int = 10
    cache_size: int = 10_000

    def __post_init__(self) -> None:
        for name in (self.inventory_table, self.history_table, self.rejected_table):
            if not _TABLE_NAME.match(name):
                raise ValueError(f"table name {name!r}: Table Storage wants 3-63 letters and digits, starting with a letter")
        if len({self.inventory_table.lower(), self.history_table.lower(), self.rejected_table.lower()}) != 3:
            raise ValueError("the inventory, history and rejected tables must have different names")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            inventory_table=env.get("INVENTORY_TABLE", cls.inventory_table),
            history_table=env.get("INVENTORY_HISTORY_TABLE", cls.history_table),
            rejected_table=env.get("INVENTORY_REJECTED_TABLE", cls.rejected_table),
            storage_retry_total=int(env.get("INVENTORY_STORAGE_RETRY_TOTAL", cls.storage_retry_total)),
            conflict_retries=int(env.get("INVENTORY_CONFLICT_RETRIES", cls.conflict_retries)),
            cache_size=int(env.get("INVENTORY_CACHE_SIZE", cls.cache_size)),
        )
