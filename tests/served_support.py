"""The served app for the tests: the indexed app's HTTP functions behind devtools.http_host on a free loopback port, over
fresh tables in the session's Azurite, holding a synced service (users with emails and names) and a few events."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from devtools.arm_standin import ArmStandIn
from devtools.azurite import Azurite
from devtools.http_host import FunctionsHost
from devtools.management_plane import small_service
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.config import Settings
from shared.domain.kinds import Kind
from shared.domain.resources import parse_service_id
from shared.domain.usage import SERVICE_TOTAL, SERVICE_TOTAL_ID
from tests.support import SERVICE_ID, T0, ManualClock, event
from tests.usage_support import contribution, counts, put_usage, tracking

PERSONAL_VALUES = ("alice@contoso.example", "Firstalice", "Lastalice", "203.0.113.7")  # user alice in small_service, and her IP


@dataclass
class Served:
    host: FunctionsHost
    services: bootstrap.Services

    @property
    def key(self) -> str:
        return self.host.keys.default

    def get(self, path: str, headers: dict[str, str] | None = None, *, key: bool = True) -> tuple[int, dict[str, str], bytes]:
        sent = {**({"x-functions-key": self.key} if key else {}), **(headers or {})}
        request = urllib.request.Request(self.host.url + path, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        status, answer, body = self.get(path, headers)
        return status, answer.get("X-Inventory-Role", ""), json.loads(body)


def _audit_record(at: int) -> dict[str, Any]:
    """An exported Activity Log record of a write to user alice, made by alice herself (the caller is personal data)."""
    return {"time": (T0 + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z"), "resourceId": f"{SERVICE_ID}/users/alice",
            "operationName": "MICROSOFT.APIMANAGEMENT/SERVICE/USERS/WRITE", "category": "Write", "resultType": "Success",
            "correlationId": "c0ffee00-0000-4000-8000-000000000001", "callerIpAddress": "203.0.113.7",
            "identity": {"claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": PERSONAL_VALUES[0],
                                    "name": f"{PERSONAL_VALUES[1]} {PERSONAL_VALUES[2]}",
                                    "http://schemas.microsoft.com/identity/claims/objectidentifier": "00000000-0000-4000-8000-0000000000a1"}}}


def usage_rows(now: datetime) -> list[dict[str, Any]]:
    """Gateway-log counts in the usage table's format: the service's and API orders' requests in three hours of the
    last day and one of 20 days ago (what the pages' charts draw)."""
    rows: list[dict[str, Any]] = [tracking("contoso", now - timedelta(days=25))]
    hour = now.replace(minute=0, second=0, microsecond=0)
    for back, total, failed in ((0, 7, 1), (3, 11, 2), (20, 5, 0), (20 * 24, 13, 4)):
        for kind, ident in ((SERVICE_TOTAL, SERVICE_TOTAL_ID), (Kind.API.value, "orders")):
            rows.append(contribution("contoso", kind, ident, hour - timedelta(hours=back), counts(total, failed=failed, unauthorized=1)))
    return rows


def principal(*roles: str, role_typ: str | None = None, name: str = "Ada") -> str:
    claims = [{"typ": "name", "val": name}, *({"typ": role_typ or "roles", "val": r} for r in roles)]
    document: dict[str, Any] = {"auth_typ": "aad", "claims": claims, "name_typ": "name"}
    if role_typ:
        document["role_typ"] = role_typ
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.fixture(scope="module")
def served(azurite: Azurite) -> Iterator[Served]:
    from tests.conftest import fresh_settings

    tables = fresh_settings()
    with pytest.MonkeyPatch.context() as patch, ArmStandIn() as arm:
        arm.put_many(small_service(SERVICE_ID))
        for name, value in {"INVENTORY_STORAGE": azurite.connection_string, "ENRICH_FROM_ARM": "true", "ARM_ENDPOINT": arm.endpoint,
                            **arm.identity_env()}.items():
            patch.setenv(name, value)
        settings = replace(Settings.from_env(), **{f.name: getattr(tables, f.name) for f in fields(tables) if f.name.endswith("_table")})
        clock = ManualClock(T0 + timedelta(hours=2))
        services = bootstrap.build_services(settings, clock=clock.now, with_arm=True)
        bootstrap.install(services)
        try:
            assert services.reconciler.syncer is not None
            report = services.reconciler.syncer.sync(parse_service_id(SERVICE_ID))
            assert report.finished and not report.incomplete, report
            apim_events = indexed_function("apim_events")
            for payload in (event("UserUpdated", "/users/alice", at=30), event("APIUpdated", "/apis/orders", at=40)):
                apim_events(decode_event(payload))
            # Who made alice's change, as the Activity Log says: a caller's name and UPN are personal data too.
            written = bootstrap.audit_writer(services).write([_audit_record(at=30)], "test")
            assert written.written == 1, written
            put_usage(services.store, usage_rows(clock.now()))
            with FunctionsHost() as host:
                yield Served(host, services)
        finally:
            bootstrap.install(None)
