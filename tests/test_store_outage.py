"""The store becoming unreachable mid-stream: the function raises (so Event Grid delivers again), and
once the store is back, redelivering the stream converges."""

from __future__ import annotations

import pytest
from azure.core.exceptions import AzureError

from devtools.azurite import ACCOUNT, KEY, Azurite
from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.store.memory import InMemoryStore
from tests.conftest import fresh_settings
from tests.support import CLOCK, comparable_rows, event, inventory_rows, processor_over, rejected_records
from tests.tcp_proxy import TcpProxy


def test_outage_raises_then_redelivery_converges(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = TcpProxy(azurite.port).start()
    settings = fresh_settings()
    monkeypatch.setenv("INVENTORY_STORAGE", f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                       f"TableEndpoint=http://127.0.0.1:{proxy.port}/{ACCOUNT};")
    monkeypatch.setenv("INVENTORY_TABLE", settings.inventory_table)
    monkeypatch.setenv("INVENTORY_HISTORY_TABLE", settings.history_table)
    monkeypatch.setenv("INVENTORY_REJECTED_TABLE", settings.rejected_table)
    monkeypatch.setenv("INVENTORY_ALERTS_TABLE", settings.outbox_table)
    monkeypatch.setenv("INVENTORY_STORAGE_RETRY_TOTAL", "1")
    bootstrap.install(bootstrap.build_services(clock=CLOCK.now))
    apim_events = indexed_function("apim_events")
    stream = [event("APICreated", "/apis/orders", at=1), event("APIReleaseCreated", "/apis/orders/releases/r1", at=2),
              event("UserCreated", "/users/alice", at=3), event("APIDeleted", "/apis/orders", at=9),
              event("UserUpdated", "/users/alice", at=4), event("GatewayTokenExpired", "/gateways/edge/pod-1", at=5),
              event("APIUpdated", "/apis/orders", at=6), event("UserDeleted", "/users/alice", at=7)]
    try:
        for payload in stream[:3]:
            apim_events(decode_event(payload))
        proxy.cut()
        failures = 0
        for payload in stream[3:]:
            with pytest.raises(AzureError):
                apim_events(decode_event(payload))
            failures += 1
        assert failures == 5
        proxy.start()
        for payload in stream:  # Event Grid redelivers whole batches, including what had succeeded
            apim_events(decode_event(payload))
        expected = InMemoryStore()
        for payload in sorted(stream, key=lambda e: (e["time"], e["id"])):
            processor_over(expected, CLOCK.now).handle(decode_event(payload))
        assert comparable_rows(inventory_rows(bootstrap.services().store)) == comparable_rows(inventory_rows(expected))
        assert rejected_records(bootstrap.services().store) == []
    finally:
        proxy.cut()
        bootstrap.install(None)
