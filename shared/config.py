"""App settings, read once. docs/settings.md lists every one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    inventory_table: str = "ApimInventory"
    history_table: str = "ApimInventoryHistory"
    rejected_table: str = "ApimInventoryRejected"
    storage_retry_total: int = 3
    conflict_retries: int = 10
    cache_size: int = 10_000

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
