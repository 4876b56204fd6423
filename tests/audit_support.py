"""What the audit tests share: exported Activity Log records of APIM as the archive holds them (the shape of
tests/data/activity-log/sample.jsonl), and the archive's blob names (one blob per subscription per hour)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from tests.support import SERVICE_ID

SUB = SERVICE_ID.split("/")[2]
UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
ALICE = {UPN: "alice@contoso.com", "name": "Alice Smith", "appid": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", OID: "oid-alice"}
PIPELINE = {"appid": "app-pipeline", OID: "oid-pipeline"}  # a service principal: no UPN
MI_ID = f"/subscriptions/{SUB}/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ops"
IDENTITY = {"appid": "app-mi", OID: "oid-mi", "xms_mirid": MI_ID}  # a managed identity's token names its resource


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # seven digits, as the Activity Log writes them


def record(path: str, operation: str, result: str, at: datetime, correlation: str, claims: dict[str, Any] | None = None,
           **more: Any) -> dict[str, Any]:
    """One exported record of an operation on `path` under the service (`apis/a`), `operation` the tail of its name
    (`APIS/WRITE`, `SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION`)."""
    resource = f"{SERVICE_ID}/{path}" if path else SERVICE_ID
    return {"time": iso(at), "resourceId": resource.upper(), "operationName": f"MICROSOFT.APIMANAGEMENT/SERVICE/{operation}",
            "category": "Write", "resultType": result, "resultSignature": f"{result}.", "correlationId": correlation,
            "callerIpAddress": "203.0.113.7", "level": "Information", "location": "global",
            "identity": {"authorization": {"scope": resource, "action": f"Microsoft.ApiManagement/service/{operation.lower()}"},
                         "claims": dict(ALICE if claims is None else claims)},
            "properties": {"statusCode": "OK" if result == "Success" else "" if result == "Start" else "BadRequest"}, **more}


def operation(path: str, name: str, at: datetime, correlation: str, claims: dict[str, Any] | None = None,
              result: str = "Success", took: timedelta = timedelta(seconds=2)) -> list[dict[str, Any]]:
    """The Start and the Success (or Failure) of one operation."""
    return [record(path, name, "Start", at - took, correlation, claims), record(path, name, result, at, correlation, claims)]


def blob_name(hour: datetime) -> str:
    return f"resourceId=/SUBSCRIPTIONS/{SUB}/y={hour:%Y}/m={hour:%m}/d={hour:%d}/h={hour:%H}/m=00/PT1H.json"


def lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)
