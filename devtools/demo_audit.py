"""The demo's Activity Log: records that match the demo stream's events of contoso-apim (a user creating an API, a
pipeline's service principal creating a subscription, a failed attempt, a product deleted, a managed identity changing
a backend that sends no event, a key regeneration), half written to the archive before the stream is delivered and
half after it; the app reads them (`audit ingest`), and `history` names the callers."""

from __future__ import annotations

import contextlib
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from devtools.activity_log import OID, UPN, blob_name, lines, operation, record

ALICE = {UPN: "alice@contoso.com", "name": "Alice Smith", "appid": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", OID: "5f1c-alice"}
PIPELINE = {"appid": "9d2e-release-pipeline", OID: "77aa-pipeline-sp"}  # a service principal: no UPN
OPS = {"appid": "1b3c-ops-identity", OID: "e0f1-ops-mi",
       "xms_mirid": "/subscriptions/0/resourcegroups/rg-ops/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ops"}
COMMANDS: tuple[tuple[str, ...], ...] = (("audit", "ingest"), ("history", "contoso-apim/apis/orders"),
                                         ("history", "contoso-apim/backends/orders-backend"), ("keys", "--older-than", "1d"))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def records(service_id: str, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(written before the stream, written after it), at the times of the stream's events they explain."""
    before = [*operation(service_id, "apis/orders", "APIS/WRITE", _at("2026-11-02T09:08:11Z"), "corr-orders", ALICE),
              *operation(service_id, "apis/orders", "APIS/WRITE", _at("2026-11-02T09:21:00Z"), "corr-orders-bad", PIPELINE, result="Failure")]
    after = [*operation(service_id, "subscriptions/alice-starter", "SUBSCRIPTIONS/WRITE", _at("2026-11-02T09:18:45Z"), "corr-sub", PIPELINE),
             *operation(service_id, "products/trial", "PRODUCTS/DELETE", _at("2026-11-02T10:28:46Z"), "corr-trial", ALICE),
             *operation(service_id, "backends/orders-backend", "BACKENDS/WRITE", _at("2026-11-02T09:40:00Z"), "corr-backend", OPS),
             record(service_id, "subscriptions/alice-starter", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success",
                    now - timedelta(hours=1), "corr-key", ALICE)]
    return before, after


def append(blob_connection: str, container: str, subscription: str, found: list[dict[str, Any]]) -> int:
    """Append the records to their hour blobs (created where missing), as the diagnostic setting does."""
    client = BlobServiceClient.from_connection_string(blob_connection).get_container_client(container)
    with contextlib.suppress(ResourceExistsError):  # the second part goes into the container of the first
        client.create_container()
    by_blob: dict[str, list[dict[str, Any]]] = {}
    for r in found:
        by_blob.setdefault(blob_name(subscription, _at(r["time"]).replace(minute=0, second=0, microsecond=0)), []).append(r)
    for name, part in by_blob.items():
        blob = client.get_blob_client(name)
        if not blob.exists():
            blob.create_append_blob()
        blob.append_block(lines(*part))
    return len(by_blob)


def audit_lines(before: int, after: int, container: str) -> list[str]:
    return ["", f"Activity Log: {before} records of contoso-apim written to {container} before the stream was delivered (and read), "
            f"{after} after it: a user, a service principal, a managed identity, a failed attempt, a key regeneration, and a "
            "backend change no event announces"]


def audit_problems(command: Path, now: str) -> list[str]:
    """Where `history -o json` does not name the callers the demo wrote."""
    def history(ident: str) -> list[dict[str, Any]]:
        done = subprocess.run([str(command), "--now", now, "history", ident, "-o", "json"], capture_output=True, encoding="utf-8", check=False)
        return json.loads(done.stdout) if done.returncode == 0 else []
    problems = []
    created = [e for e in history("contoso-apim/apis/orders") if str(e.get("EventType", "")).endswith("APICreated") and ";" not in str(e.get("Path"))]
    if not any(e.get("callerUpn") == "alice@contoso.com" and e.get("auditJoined") for e in created):
        problems.append("history of apis/orders does not name alice@contoso.com as the caller of APICreated")
    subscription = history("contoso-apim/subscriptions/alice-starter")
    if not any(e.get("callerAppId") == PIPELINE["appid"] and e.get("auditJoined") for e in subscription):
        problems.append("history of subscriptions/alice-starter does not name the pipeline (a record read after its event)")
    if not any(e.get("callerKind") == "managedIdentity" for e in history("contoso-apim/backends/orders-backend")):
        problems.append("history of backends/orders-backend does not show the managed identity's change")
    return problems
