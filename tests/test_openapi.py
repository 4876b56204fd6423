"""GET /api/openapi.json: the description matches the indexed app's routes and the handlers' parameters, is valid
OpenAPI 3.1, and holds for the served app under schemathesis (every answer documented, none a 500)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import azure.functions as func
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from devtools.worker import function_json, http_functions, indexed_function
from shared import bootstrap
from shared.entrypoints.openapi import KEY_LEVEL, PAGES, ROUTES, document
from tests.served_support import Served, served

__all__ = ["served"]
# The API validates its text parameters (times, ids) beyond what a schema says, with a documented 400: a schema-valid
# request refused is no failure here. Every other check runs: no 500, every status, header and body as documented.
NOT_CHECKED = [schemathesis.checks.positive_data_acceptance]
EXAMPLES = 25  # schemathesis examples per operation: ~21 s for the 12 operations on this machine (docs/design.md)


@pytest.mark.unit
def test_every_http_function_of_the_indexed_app_is_described_as_it_is_indexed() -> None:
    indexed = {name: trigger for name, trigger, _ in http_functions()}
    assert set(indexed) == set(ROUTES) | set(PAGES), "a route is missing from shared/entrypoints/openapi.py (or is not indexed)"
    for name, trigger in indexed.items():
        if name in PAGES:
            assert (trigger["route"], trigger["authLevel"], trigger["methods"]) == (PAGES[name], "ANONYMOUS", ["GET"])
            continue
        assert (trigger["route"], trigger["authLevel"], trigger["methods"]) == (ROUTES[name].path, KEY_LEVEL, ["GET"]), name
        item = document()["paths"]["/" + ROUTES[name].path]
        assert list(item) == ["get"] and item["get"]["operationId"] == name
        path_params = {p["name"] for p in item["get"]["parameters"] if p["in"] == "path"}
        assert path_params == set(re.findall(r"\{(\w+)\}", trigger["route"]))
    assert function_json("inventory")["bindings"][0]["route"] == "api/inventory/{kind}"


@pytest.mark.unit
def test_the_description_is_valid_openapi_3_1() -> None:
    validate(document())
    assert document()["openapi"] == "3.1.0"
    for item in document()["paths"].values():
        for operation in item.values():
            assert {"200", "401"} <= set(operation["responses"]), operation["operationId"]


def _call(name: str, params: dict[str, str]) -> tuple[int, Any]:
    route = {"kind": "user"} if "{kind}" in ROUTES[name].path else {}
    response = indexed_function(name)(func.HttpRequest("GET", f"http://localhost/{ROUTES[name].path}", params=params, route_params=route, body=b""))
    return response.status_code, json.loads(response.get_body())


def test_each_handler_takes_exactly_the_parameters_described(app_services: bootstrap.Services) -> None:
    problems = []
    for name, route in ROUTES.items():
        takes_none = name in ("health", "openapi")  # they ignore the query: nothing to refuse
        status, body = _call(name, {"bogus": "1"})
        if not takes_none and (status != 400 or "unknown parameter 'bogus'" not in body.get("error", "")):
            problems.append(f"{name} took an undocumented parameter: {status} {body}")
        for param in route.params:
            if param.where == "query":
                status, body = _call(name, {param.name: "x"})
                if "unknown parameter" in str(body.get("error", "")):
                    problems.append(f"{name} refuses its documented parameter {param.name}: {body['error']}")
    assert problems == []


@pytest.mark.slow  # a long property run: ~21 s
def test_the_served_app_holds_to_its_description(served: Served) -> None:
    """schemathesis's checks on generated requests, EXAMPLES per operation (its pytest plugin is not used: it does not run
    under this pytest); the failures of every operation, each with the request that found it. schemathesis leaves out
    the description's own route (GET /api/openapi.json): the tests above and tests/test_signin.py call it."""
    described = schemathesis.openapi.from_url(f"{served.host.url}/api/openapi.json", headers={"x-functions-key": served.key})
    failures: list[str] = []
    timing: dict[str, float] = {}
    for result in described.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an operation the description cannot build raises here: a failure

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def check(case: Any) -> None:
            case.call_and_validate(base_url=served.host.url, headers={"x-functions-key": served.key}, excluded_checks=NOT_CHECKED)

        started = time.monotonic()
        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # one operation's failure must not hide the next one's
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
        timing[operation.label] = time.monotonic() - started
    print("schemathesis seconds per operation:", {k: round(v, 1) for k, v in timing.items()}, f"total {sum(timing.values()):.1f}")
    assert failures == []
