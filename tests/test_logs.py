"""Log lines as Application Insights receives them: a message of a stable prefix and one JSON object, one
line per event and one summary line per invocation, parsed here the way the README's KQL parses them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.core.exceptions import AzureError

from devtools.azurite import ACCOUNT, KEY, Azurite
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.logs import service_of
from tests.support import SERVICE_ID, ManualClock, event
from tests.tcp_proxy import TcpProxy

KQL_EVENT = re.compile(r"apim_inventory\.event (\{.*\})")  # extract(@"apim_inventory\.event (\{.*\})", 1, message)
KQL_SUMMARY = re.compile(r"apim_inventory\.summary (\{.*\})")


def parsed(caplog: pytest.LogCaptureFixture, pattern: re.Pattern[str]) -> list[dict[str, Any]]:
    return [json.loads(m.group(1)) for r in caplog.records if (m := pattern.search(r.getMessage()))]


def test_each_event_and_each_invocation_logs_one_parseable_line(app_services: bootstrap.Services,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="apim_inventory")
    apim_events = indexed_function("apim_events")
    created = event("UserCreated", "/users/ålice \"quoted\"", at=10)
    older, bad = event("UserUpdated", "/users/ålice \"quoted\"", at=5), event("UserCreated", "/widgets/x", at=11)
    for payload in [created, created, older, bad]:
        apim_events(decode_event(payload))
    events = parsed(caplog, KQL_EVENT)
    assert [(e["outcome"], e["id"], e["service"]) for e in events] == [
        ("applied", created["id"], "contoso"), ("duplicate", created["id"], "contoso"), ("stale", older["id"], "contoso"),
        ("rejected", bad["id"], "contoso")]
    assert events[0]["type"] == "Microsoft.ApiManagement.UserCreated" and events[0]["subject"] == "/users/ålice \"quoted\""
    assert events[3]["reason"] == "bad-subject" and events[3]["subject"] == "/widgets/x" and events[3]["message"]
    summaries = parsed(caplog, KQL_SUMMARY)
    assert [{k: s[k] for k in ("run", "events", "applied", "duplicate", "stale", "rejected")} for s in summaries] == [
        {"run": "apim_events", "events": 1, "applied": a, "duplicate": d, "stale": s, "rejected": r}
        for a, d, s, r in [(1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)]]
    assert all(isinstance(s["ms"], int) and "error" not in s for s in summaries)
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_an_invocation_that_raises_still_logs_its_summary(azurite: Azurite, app_settings: object, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    proxy = TcpProxy(azurite.port).start()
    monkeypatch.setenv("INVENTORY_STORAGE", f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                       f"TableEndpoint=http://127.0.0.1:{proxy.port}/{ACCOUNT};")
    monkeypatch.setenv("INVENTORY_STORAGE_RETRY_TOTAL", "0")
    caplog.set_level("INFO", logger="apim_inventory")
    bootstrap.install(bootstrap.build_services(clock=ManualClock().now))
    try:
        proxy.cut()
        with pytest.raises(AzureError):
            indexed_function("apim_events")(decode_event(event("UserCreated")))
    finally:
        bootstrap.install(None)
    (summary,) = parsed(caplog, KQL_SUMMARY)
    assert summary["events"] == 0 and summary["error"] == "ServiceRequestError"


@pytest.mark.unit
def test_the_service_of_a_rejected_event_comes_from_its_source() -> None:
    assert service_of(SERVICE_ID) == "contoso"
    assert service_of("/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/x") is None
    assert service_of(None) is None
