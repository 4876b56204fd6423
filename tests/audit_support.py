"""What the audit tests share: exported Activity Log records of APIM (devtools/activity_log.py, the shape of
tests/data/activity-log/sample.jsonl) under the tests' service, and the archive's blob names (one blob per
subscription per hour)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from devtools import activity_log
from devtools.activity_log import OID, UPN, iso, lines
from tests.support import SERVICE_ID

__all__ = ["ALICE", "IDENTITY", "OID", "PIPELINE", "UPN", "blob_name", "iso", "lines", "operation", "record"]
SUB = SERVICE_ID.split("/")[2]
ALICE = {UPN: "alice@contoso.com", "name": "Alice Smith", "appid": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", OID: "oid-alice"}
PIPELINE = {"appid": "app-pipeline", OID: "oid-pipeline"}  # a service principal: no UPN
MI_ID = f"/subscriptions/{SUB}/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ops"
IDENTITY = {"appid": "app-mi", OID: "oid-mi", "xms_mirid": MI_ID}  # a managed identity's token names its resource


def record(path: str, operation_: str, result: str, at: datetime, correlation: str, claims: dict[str, Any] | None = None,
           **more: Any) -> dict[str, Any]:
    return activity_log.record(SERVICE_ID, path, operation_, result, at, correlation, ALICE if claims is None else claims, **more)


def operation(path: str, name: str, at: datetime, correlation: str, claims: dict[str, Any] | None = None,
              result: str = "Success", took: timedelta = timedelta(seconds=2)) -> list[dict[str, Any]]:
    return activity_log.operation(SERVICE_ID, path, name, at, correlation, ALICE if claims is None else claims, result, took)


def blob_name(hour: datetime) -> str:
    return activity_log.blob_name(SUB, hour)
