"""The Activity Log's rules (domain/audit.py, domain/audit_join.py), in memory: what a record must hold, which are
kept, where a resource is, who the caller was, the fold of Start and Success/Failure in any order, and the join's
answer for any order of events and records (a brute-force oracle)."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import audit
from shared.domain.audit_join import joined, matches
from shared.domain.kinds import Kind
from tests.audit_support import ALICE, IDENTITY, PIPELINE, iso, operation, record
from tests.support import SERVICE_ID, T0

pytestmark = pytest.mark.unit
SAMPLE = Path(__file__).parent / "data" / "activity-log" / "sample.jsonl"


def read(r: object) -> audit.AuditRecord:
    found = audit.read_record(r)
    assert isinstance(found, audit.AuditRecord), found
    return found


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{oops", audit.NOT_JSON), (b"[1, 2]", audit.NOT_AN_OBJECT),
    (json.dumps({**record("apis/a", "APIS/WRITE", "Success", T0, "c"), "time": "yesterday"}).encode(), audit.NO_TIME),
    (json.dumps({k: v for k, v in record("apis/a", "APIS/WRITE", "Success", T0, "c").items() if k != "resourceId"}).encode(), audit.NO_RESOURCE_ID),
    (json.dumps({k: v for k, v in record("apis/a", "APIS/WRITE", "Success", T0, "c").items() if k != "operationName"}).encode(), audit.NO_OPERATION),
    (json.dumps({**record("apis/a", "APIS/WRITE", "Success", T0, "c"), "resultType": "Maybe"}).encode(), audit.NO_RESULT),
    (json.dumps({**record("apis/a", "APIS/WRITE", "Success", T0, "c"), "correlationId": ""}).encode(), audit.NO_CORRELATION),
    (json.dumps({**record("apis/a", "APIS/WRITE", "Success", T0, "c"), "resourceId": "/subscriptions/s/resourceGroups/r"}).encode(),
     audit.NOT_APIM_RESOURCE),
])
def test_a_bad_record_says_why(raw: bytes, reason: str) -> None:
    (found,) = audit.read_line(raw)
    assert isinstance(found, audit.BadRecord) and found.reason == reason


def test_the_sample_reads_as_promised() -> None:
    found = [r for line in SAMPLE.read_bytes().splitlines() for r in audit.read_line(line)]
    assert sum(isinstance(r, audit.Ignored) for r in found) == 1  # Microsoft.Storage: another provider
    kept = [r for r in found if isinstance(r, audit.AuditRecord)]
    assert {(r.target.path.lower(), r.operation, r.result, r.caller.kind) for r in kept} == {
        ("apis/orders", "write", "started", "user"), ("apis/orders", "write", "succeeded", "user"),
        ("backends/orders-be", "write", "started", "servicePrincipal"), ("backends/orders-be", "write", "failed", "servicePrincipal"),
        ("namedvalues/db-password", "delete", "started", "managedIdentity"), ("namedvalues/db-password", "delete", "succeeded", "managedIdentity"),
        ("subscriptions/sub-1", "regeneratePrimaryKey", "succeeded", "user")}


def test_operations_compare_without_regard_to_case_and_records_of_other_providers_are_ignored() -> None:
    lower = {**record("apis/a", "APIS/WRITE", "Success", T0, "c"), "operationName": "microsoft.apimanagement/service/apis/write"}
    assert read(lower).operation == "write"
    assert isinstance(audit.read_record({**lower, "operationName": "Microsoft.Web/sites/write"}), audit.Ignored)
    assert audit.operation_of("MICROSOFT.APIMANAGEMENT/SERVICE/SUBSCRIPTIONS/REGENERATESECONDARYKEY/ACTION") == "regenerateSecondaryKey"
    assert audit.operation_of("MICROSOFT.APIMANAGEMENT/SERVICE/NAMEDVALUES/LISTVALUE/ACTION") == "listValue"


@pytest.mark.parametrize(("path", "anchor", "kind"), [
    ("apis/orders", "apis/orders", Kind.API.value), ("apis/orders;rev=2", "apis/orders;rev=2", Kind.API.value),
    ("apis/orders/policies/policy", "apis/orders", "policies"), ("apis/orders/operations/get/policies/policy", "apis/orders", "policies"),
    ("backends/b1", "backends/b1", Kind.BACKEND.value), ("namedValues/n1", None, "namedValues"), ("certificates/c1", None, "certificates"),
    ("loggers/l1", None, "loggers"), ("diagnostics/applicationinsights", None, "diagnostics"), ("policies/policy", None, "policies"),
    ("workspaces/w1", "workspaces/w1", Kind.WORKSPACE.value), ("workspaces/w1/apis/a", "workspaces/w1/apis/a", Kind.API.value),
    ("workspaces/w1/namedValues/n", "workspaces/w1", "namedValues"), ("", None, "service"),
])
def test_a_resource_is_placed_under_its_inventory_anchor(path: str, anchor: str | None, kind: str) -> None:
    target = audit.parse_target(f"{SERVICE_ID}/{path}" if path else SERVICE_ID)
    assert target is not None and target.path == path.lower().replace("namedvalues", "namedValues")
    assert (target.anchor.path if target.anchor else None) == anchor
    assert target.kind == kind


@pytest.mark.parametrize(("claims", "evidence", "kind"), [
    (ALICE, {}, audit.USER), (PIPELINE, {}, audit.SERVICE_PRINCIPAL), (IDENTITY, {}, audit.MANAGED_IDENTITY),
    ({"appid": "x"}, {"principalType": "ManagedIdentity"}, audit.MANAGED_IDENTITY), ({}, {"principalType": "User"}, audit.USER),
    ({"appid": "x", "idtyp": "app"}, {}, audit.SERVICE_PRINCIPAL), ({}, {}, audit.UNKNOWN),
])
def test_the_caller_comes_from_the_claims(claims: dict[str, Any], evidence: dict[str, Any], kind: str) -> None:
    caller = audit.caller_of({"claims": claims, "authorization": {"evidence": evidence}})
    assert caller.kind == kind
    assert caller.upn == claims.get(audit.UPN_CLAIM, "") and caller.object_id == claims.get(audit.OBJECT_ID_CLAIM, "")


def test_the_rest_apis_caller_names_a_caller_the_claims_do_not() -> None:
    assert audit.caller_of({}, "bob@contoso.com").name == "bob@contoso.com"
    assert audit.caller_of({"claims": {"appid": "a1"}}, "a1").name == ""  # the app id is no name


@given(st.permutations(range(4)))
def test_the_fold_of_one_operations_records_is_the_same_in_any_order(order: list[int]) -> None:
    parts = [read(r) for r in (*operation("apis/a", "APIS/WRITE", T0, "c1"), record("apis/a", "APIS/WRITE", "Start", T0, "c1"),
                                record("APIS/A", "APIS/WRITE", "Success", T0, "C1", PIPELINE))]
    folded = [parts[i] for i in order]
    result = folded[0]
    for part in folded[1:]:
        result = result.merged(part)
    assert result.result == audit.SUCCEEDED and result.started_at == T0 - timedelta(seconds=2) and result.completed_at == T0
    expected = parts[0]
    for part in parts[1:]:
        expected = expected.merged(part)
    assert result == expected


def test_a_failure_and_a_key_regeneration() -> None:
    failed = read(operation("backends/b", "BACKENDS/WRITE", T0, "c", PIPELINE, result="Failure")[1])
    assert failed.result == audit.FAILED and audit.key_regenerations(failed) is None
    key = read(record("subscriptions/s1", "SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION", "Success", T0, "k"))
    assert audit.key_regenerations(key) == ("PrimaryKeyRegeneratedAt", T0)


# -- the join: any order of the two sets gives the same answer, the one a brute force gives ------------------------
def _event(i: int, change: str, seconds: int, path: str = "apis/a") -> dict[str, Any]:
    return {"EventTime": T0 + timedelta(seconds=seconds), "EventId": f"e{i}", "Change": change, "Path": path}


def _audit(i: int, operation_: str, seconds: int, result: str = audit.SUCCEEDED, path: str = "apis/a") -> dict[str, Any]:
    return {"AuditTime": T0 + timedelta(seconds=seconds), "AuditOperation": operation_, "AuditResult": result, "Path": path,
            "OperationName": f"op-{operation_}", "CorrelationId": f"c{i}", "CallerKind": "user", "CallerUpn": f"u{i}@x"}


def brute_force(events: list[dict[str, Any]], audits: list[dict[str, Any]], window: timedelta) -> dict[str, str]:
    """Event id → correlation id: every pair in the window, in order of (gap, event time, event id, record), taken
    when both are free — tried over every way of listing the pairs, which must all agree."""
    want = {"created": "write", "updated": "write", "deleted": "delete"}
    pairs = sorted((abs(e["EventTime"] - a["AuditTime"]), e["EventTime"], e["EventId"], a["CorrelationId"]) for e in events for a in audits
                   if a["AuditResult"] == audit.SUCCEEDED and want.get(e["Change"]) == a["AuditOperation"] and e["Path"] == a["Path"]
                   and abs(e["EventTime"] - a["AuditTime"]) <= window)
    found: dict[str, str] = {}
    for _, _, event_id, correlation in pairs:
        if event_id not in found and correlation not in found.values():
            found[event_id] = correlation
    return found


events_st = st.lists(st.tuples(st.sampled_from(["created", "updated", "deleted", "synced"]), st.integers(0, 900), st.sampled_from(["apis/a", "backends/b"])),
                     max_size=6)
audits_st = st.lists(st.tuples(st.sampled_from(["write", "delete"]), st.integers(0, 900), st.sampled_from([audit.SUCCEEDED, audit.FAILED]),
                               st.sampled_from(["apis/a", "backends/b"])), max_size=6)


@settings(max_examples=200, deadline=None)
@given(events_st, audits_st, st.randoms())
def test_the_join_is_a_function_of_the_two_sets(raw_events: list[Any], raw_audits: list[Any], rnd: Any) -> None:
    events = [_event(i, c, s, p) for i, (c, s, p) in enumerate(raw_events)]
    audits = [_audit(i, o, s, r, p) for i, (o, s, r, p) in enumerate(raw_audits)]
    window = timedelta(minutes=5)
    answer = joined(events, audits, window)
    shuffled_e, shuffled_a = events[:], audits + audits[: len(audits) // 2]  # and some records read twice
    rnd.shuffle(shuffled_e)
    rnd.shuffle(shuffled_a)
    assert joined(shuffled_e, shuffled_a, window) == answer
    found = {events[i]["EventId"]: audits[j]["CorrelationId"] for i, j in matches(events, audits, window).items()}
    assert found == brute_force(events, audits, window)
    assert len(answer) == len(events) + len(audits) - len(found)
    assert [e["EventTime"] for e in answer] == sorted((e["EventTime"] for e in answer), reverse=True)


def test_each_record_explains_one_event_the_nearest() -> None:
    events = [_event(1, "updated", 0), _event(2, "updated", 100)]
    audits = [_audit(1, "write", 90)]
    (first, second) = joined(events, audits, timedelta(minutes=5))
    assert (first["EventId"], first["auditJoined"], first["callerUpn"]) == ("e2", True, "u1@x")
    assert (second["EventId"], second.get("auditJoined")) == ("e1", None)  # no record explains it: as it was
    assert list(itertools.chain(*[matches(events, audits, timedelta(seconds=5)).items()])) == []  # out of the window: none


def test_iso_has_seven_digits() -> None:
    assert iso(T0).endswith(".0000000Z")
