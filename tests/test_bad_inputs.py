"""A corpus of bad inputs: each is logged, recorded as rejected with its reason, acknowledged (the
function returns), and changes nothing in the inventory."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.worker import decode_event, indexed_function
from shared import bootstrap
from shared.domain.outcomes import Outcome
from shared.ingest.pipeline import EventProcessor
from shared.store.memory import InMemoryStore
from tests.support import SERVICE_ID, event, history_records, inventory_rows, rejected_records

OTHER_SERVICE = SERVICE_ID.replace("contoso", "fabrikam")


def without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in keys}


def with_(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**payload, **changes}


CE = event("UserCreated")
EG = event("UserCreated", schema="eventgrid")
TOKEN = event("GatewayTokenNearExpiry")
BREAKER = event("CircuitBreaker.Opened")

CORPUS: list[tuple[str, dict[str, Any] | str, str]] = [
    ("storage event", with_(CE, type="Microsoft.Storage.BlobCreated"), "not-apim"),
    ("storage event eg", with_(EG, eventType="Microsoft.Storage.BlobCreated"), "not-apim"),
    ("resources event", with_(CE, type="Microsoft.Resources.ResourceWriteSuccess"), "not-apim"),
    ("unknown apim type", with_(CE, type="Microsoft.ApiManagement.ServiceBackedUp"), "unhandled-type"),
    ("unknown apim type eg", with_(EG, eventType="Microsoft.ApiManagement.NamedValueCreated"), "unhandled-type"),
    ("no id", without(CE, "id"), "missing-id"),
    ("blank id", with_(CE, id="   "), "missing-id"),
    ("numeric id", with_(CE, id=42), "missing-id"),
    ("id too long", with_(CE, id="x" * 300), "key-too-large"),
    ("no type", without(CE, "type"), "missing-type"),
    ("numeric type", with_(CE, type=5), "missing-type"),
    ("eg no eventType", without(EG, "eventType"), "missing-type"),
    ("camelCase specVersion", {**without(CE, "specversion"), "specVersion": "1.0"}, "unrecoverable-envelope"),
    ("no source", without(CE, "source"), "not-apim"),
    ("storage account source", with_(CE, source=SERVICE_ID.replace("Microsoft.ApiManagement/service", "Microsoft.Storage/storageAccounts")), "not-apim"),
    ("source is a child", with_(CE, source=SERVICE_ID + "/apis/a"), "not-apim"),
    ("topic is a list", with_(EG, topic=[SERVICE_ID]), "not-apim"),
    ("no subject", without(CE, "subject"), "bad-subject"),
    ("empty subject", with_(CE, subject=""), "bad-subject"),
    ("unknown collection", with_(CE, subject="/loggers/l1", data={}), "bad-subject"),
    ("collection only", with_(CE, subject="/users", data={}), "bad-subject"),
    ("empty segment", with_(CE, subject="/users//alice", data={}), "bad-subject"),
    ("too deep", with_(CE, subject="/users/alice/groups/g/x", data={}), "bad-subject"),
    ("revision on a user", with_(CE, subject="/users/alice;rev=2", data={}), "bad-subject"),
    ("revision not a number", event("APIUpdated", "/apis/orders;rev=two"), "bad-subject"),
    ("release of a revision", event("APIReleaseCreated", "/apis/orders;rev=2/releases/r1"), "bad-subject"),
    ("kind mismatch", with_(CE, subject="/products/p1", data={"resourceUri": SERVICE_ID + "/products/p1"}), "kind-mismatch"),
    ("resourceUri not a string", with_(CE, data={"resourceUri": 12}), "bad-resource-uri"),
    ("resourceUri garbage", with_(CE, data={"resourceUri": "hello"}), "bad-resource-uri"),
    ("resourceUri is the service", with_(CE, data={"resourceUri": SERVICE_ID}), "bad-resource-uri"),
    ("resourceUri other service", with_(CE, data={"resourceUri": OTHER_SERVICE + "/users/alice"}), "service-mismatch"),
    ("resourceUri other resource", with_(CE, data={"resourceUri": SERVICE_ID + "/users/bob"}), "subject-mismatch"),
    ("data is a string", with_(CE, data="resourceUri"), "bad-data"),
    ("data is a list", with_(CE, data=[1, 2]), "bad-data"),
    ("no time", without(CE, "time"), "bad-time"),
    ("capitalised Time unparsable", {**without(CE, "time"), "Time": "yesterday"}, "bad-time"),
    ("token without tokenInfo", with_(TOKEN, data=without(TOKEN["data"], "tokenInfo")), "bad-data"),
    ("token without gatewayInfo", with_(TOKEN, data=without(TOKEN["data"], "gatewayInfo")), "bad-data"),
    ("token expiry unparsable", with_(TOKEN, data={**TOKEN["data"], "tokenInfo": {"expiresAtUtc": "soon"}}), "bad-time"),
    ("token expiry before 1601", with_(TOKEN, data={**TOKEN["data"], "tokenInfo": {"expiresAtUtc": "0001-01-01T00:00:00+01:00"}}), "bad-time"),
    ("token expiry missing", with_(TOKEN, data={**TOKEN["data"], "tokenInfo": {}}), "bad-time"),
    ("token other gateway", with_(TOKEN, data={**TOKEN["data"], "gatewayInfo": {"gatewayId": "west", "instanceId": "pod-1"}}), "subject-mismatch"),
    ("token other instance", with_(TOKEN, data={**TOKEN["data"], "gatewayInfo": {"gatewayId": "edge", "instanceId": "pod-9"}}), "subject-mismatch"),
    ("breaker other backend", with_(BREAKER, data={**BREAKER["data"], "backendName": "billing"}), "subject-mismatch"),
    ("breaker rules a list", with_(BREAKER, data={"backendName": "payments", "circuitBreaker": {"rules": []}}), "bad-data"),
    ("breaker bad trip", with_(BREAKER, data={"backendName": "payments", "circuitBreaker": {"rules": {"r5xx": {"tripDuration": "5 minutes"}}}}), "bad-data"),
    ("name too long", event("UserCreated", "/users/" + "u" * 600), "key-too-large"),
    ("lone surrogate", '{"specversion": "1.0", "id": "s1", "source": "%s", "subject": "/users/a\\ud800b", '
     '"type": "Microsoft.ApiManagement.UserCreated", "time": "2026-11-02T09:00:00Z", "data": {}}' % SERVICE_ID, "forbidden-key"),
]


@pytest.mark.unit
def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 40
    assert len({name for name, _, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("name", "payload", "reason"), CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_input_is_rejected_and_acknowledged(app_processor: EventProcessor, name: str, payload: Any, reason: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    indexed_function("apim_events")(decode_event(text))  # returns: acknowledged, not retried
    (record,) = rejected_records(bootstrap.services().store)
    assert record["Reason"] == reason, record["Message"]
    assert record["Message"] and record["Payload"]
    assert list(inventory_rows(bootstrap.services().store)) == []
    assert history_records(bootstrap.services().store) == []  # type: ignore[attr-defined]
    lines = [json.loads(r.getMessage().removeprefix("apim_inventory.event ")) for r in caplog.records
             if r.getMessage().startswith("apim_inventory.event ")]
    assert [(line["outcome"], line["reason"]) for line in lines] == [("rejected", reason)]


@pytest.mark.unit
@pytest.mark.parametrize("text", [
    json.dumps(with_(CE, time="not a time")),
    json.dumps(with_(EG, eventTime="2026-13-45T99:00:00Z")),
    "[1, 2, 3]",
    '"just a string"',
    "not json at all",
])
def test_payloads_the_library_refuses_never_reach_the_function(text: str) -> None:
    """Event Grid retries these, then dead-letters them (docs/design.md)."""
    with pytest.raises(Exception):  # noqa: B017 - whatever the library raises, the host fails the delivery
        decode_event(text)


@pytest.mark.unit
def test_id_reused_for_another_resource_is_another_event(memory_processor: EventProcessor, memory_store: InMemoryStore) -> None:
    """A history record is keyed by resource, event time and id: an id reused elsewhere lands (Microsoft's
    published examples reuse ids across types; see tests/data/README.md)."""
    first = memory_processor.handle(decode_event(event("UserCreated", "/users/alice", event_id="same")))
    second = memory_processor.handle(decode_event(event("UserCreated", "/users/bob", event_id="same")))
    third = memory_processor.handle(decode_event(event("ProductCreated", "/products/p", event_id="same")))
    assert [r.outcome for r in (first, second, third)] == [Outcome.APPLIED] * 3
    assert sorted(r["Path"] for r in inventory_rows(memory_store)) == ["products/p", "users/alice", "users/bob"]
    assert sorted(h["Path"] for h in history_records(memory_store)) == ["products/p", "users/alice", "users/bob"]


@pytest.mark.unit
def test_id_reused_at_another_time_is_another_event(memory_processor: EventProcessor, memory_store: InMemoryStore) -> None:
    memory_processor.handle(decode_event(event("UserCreated", "/users/alice", event_id="same")))
    result = memory_processor.handle(decode_event(event("UserDeleted", "/users/alice", event_id="same", at=5)))
    assert result.outcome is Outcome.APPLIED
    (row,) = inventory_rows(memory_store)
    assert row["IsDeleted"] is True
    assert [h["EventType"].rsplit(".", 1)[1] for h in history_records(memory_store)] == ["UserDeleted", "UserCreated"]  # newest first


@pytest.mark.unit
def test_id_reused_on_the_same_resource_at_the_same_time_is_a_redelivery(memory_processor: EventProcessor,
                                                                         memory_store: InMemoryStore) -> None:
    """Same resource, same time, same id: the same history record, so the first payload's is kept (the row's merge
    rules order the two by time and id, which tie: the creation stands)."""
    memory_processor.handle(decode_event(event("UserCreated", "/users/alice", event_id="same")))
    memory_processor.handle(decode_event(event("UserDeleted", "/users/alice", event_id="same")))
    (record,) = history_records(memory_store)
    assert record["EventType"].endswith("UserCreated") and record["Duplicates"] == 1
    (row,) = inventory_rows(memory_store)
    assert row["IsDeleted"] is False


@pytest.mark.unit
def test_same_id_in_two_services_is_two_events(memory_processor: EventProcessor, memory_store: InMemoryStore) -> None:
    memory_processor.handle(decode_event(event("UserCreated", "/users/alice", event_id="same")))
    result = memory_processor.handle(decode_event(event("UserCreated", "/users/alice", event_id="same", service=OTHER_SERVICE)))
    assert result.outcome is Outcome.APPLIED
    assert sorted(r["Service"] for r in inventory_rows(memory_store)) == ["contoso", "fabrikam"]
