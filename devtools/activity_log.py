"""Activity Log records of APIM as a subscription's diagnostic setting archives them (`insights-activity-logs`, one
JSON line a record, the shape of Microsoft's exported-record sample with upper-case ids, as real exports write
them), and the archive's blob names: for the demo and the tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"  # seven digits, as the Activity Log writes them


def record(service_id: str, path: str, operation: str, result: str, at: datetime, correlation: str, claims: dict[str, Any],
           **more: Any) -> dict[str, Any]:
    """One exported record of an operation on `path` under the service (`apis/a`), `operation` the tail of its name
    (`APIS/WRITE`, `SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION`), `result` Start, Success or Failure."""
    resource = f"{service_id}/{path}" if path else service_id
    return {"time": iso(at), "resourceId": resource.upper(), "operationName": f"MICROSOFT.APIMANAGEMENT/SERVICE/{operation}",
            "category": "Write", "resultType": result, "resultSignature": f"{result}.", "correlationId": correlation,
            "callerIpAddress": "203.0.113.7", "level": "Information", "location": "global",
            "identity": {"authorization": {"scope": resource, "action": f"Microsoft.ApiManagement/service/{operation.lower()}"},
                         "claims": dict(claims)},
            "properties": {"statusCode": "OK" if result == "Success" else "" if result == "Start" else "BadRequest"}, **more}


def operation(service_id: str, path: str, name: str, at: datetime, correlation: str, claims: dict[str, Any], result: str = "Success",
              took: timedelta = timedelta(seconds=2)) -> list[dict[str, Any]]:
    """The Start and the Success (or Failure) of one operation, completed at `at`."""
    return [record(service_id, path, name, "Start", at - took, correlation, claims),
            record(service_id, path, name, result, at, correlation, claims)]


def blob_name(subscription: str, hour: datetime) -> str:
    return f"resourceId=/SUBSCRIPTIONS/{subscription.upper()}/y={hour:%Y}/m={hour:%m}/d={hour:%d}/h={hour:%H}/m=00/PT1H.json"


def lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)
