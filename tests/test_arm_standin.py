"""The ARM / managed identity stand-in, driven by the real SDK: ManagedIdentityCredential and an azure-core pipeline."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core import PipelineClient
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
from azure.core.rest import HttpRequest, HttpResponse
from azure.identity import ManagedIdentityCredential

from devtools.arm_standin import API_VERSION, ArmStandIn
from tests.support import use_standin_identity

ARM_SCOPE = "https://management.azure.com/.default"
RG = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-APIM/providers/Microsoft.ApiManagement/service"
SERVICE = f"{RG}/Contoso"


@pytest.fixture
def arm() -> Iterator[ArmStandIn]:
    with ArmStandIn(page_size=3) as server:
        yield server


@pytest.fixture
def credential(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[ManagedIdentityCredential]:
    use_standin_identity(arm, monkeypatch)
    with ManagedIdentityCredential() as managed_identity:
        yield managed_identity


@pytest.fixture
def client(arm: ArmStandIn, credential: ManagedIdentityCredential) -> Iterator[PipelineClient[HttpRequest, HttpResponse]]:
    policies = [RetryPolicy(retry_total=1), BearerTokenCredentialPolicy(credential, ARM_SCOPE)]
    with PipelineClient[HttpRequest, HttpResponse](arm.endpoint, policies=policies) as pipeline_client:
        yield pipeline_client


def anonymous_client(arm: ArmStandIn) -> PipelineClient[HttpRequest, HttpResponse]:
    return PipelineClient[HttpRequest, HttpResponse](arm.endpoint, policies=[RetryPolicy(retry_total=0)])


def get(client: PipelineClient[HttpRequest, HttpResponse], url: str, params: dict[str, Any] | None = None, *,
        bearer: bool = True) -> HttpResponse:
    """GET as generated clients do; `enforce_https=False` lets BearerTokenCredentialPolicy send its token over http."""
    request = HttpRequest("GET", client.format_url(url), params={"api-version": API_VERSION} if params is None else params)
    return client.send_request(request, enforce_https=False) if bearer else client.send_request(request)


def list_pages(client: PipelineClient[HttpRequest, HttpResponse], collection: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a collection, following `nextLink` as the SDK's pagers do."""
    pages: list[dict[str, Any]] = []
    response = get(client, collection, {"api-version": API_VERSION, **params})
    while True:
        assert response.status_code == 200, response.text()
        pages.append(response.json())
        if "nextLink" not in pages[-1]:
            return pages
        response = client.send_request(HttpRequest("GET", pages[-1]["nextLink"]), enforce_https=False)


def error_code(response: HttpResponse) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_the_token_comes_from_the_identity_endpoint_with_the_identity_header_and_the_arm_audience(
        arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {"publisherName": "Contoso"})

    assert get(client, SERVICE).status_code == 200
    assert get(client, SERVICE).status_code == 200

    [token_request] = arm.hits("/msi/token")  # fetched once, then cached by the credential
    assert token_request.headers["x-identity-header"] == arm.identity_header
    assert token_request.query["api-version"] == "2019-08-01"
    assert token_request.query["resource"] == "https://management.azure.com"
    assert arm.token_resources == ["https://management.azure.com"]
    service_requests = arm.hits("/service/contoso")
    assert [r.headers["authorization"] for r in service_requests] == [f"Bearer {arm.token}"] * 2
    assert arm.requests[0] is token_request and arm.requests[1:] == service_requests


def test_a_wrong_identity_header_gets_no_token(arm: ArmStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", arm.identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-secret")

    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential().get_token(ARM_SCOPE)

    response = get(anonymous_client(arm), arm.identity_endpoint, {"api-version": "2019-08-01", "resource": "https://management.azure.com"}, bearer=False)
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401
    assert arm.token_resources == []


def test_a_single_get_serves_the_resource_as_put_whatever_the_case_of_the_path(
        arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    service = arm.put(SERVICE, {"publisherName": "Contoso"})
    api = arm.put(f"{SERVICE}/apis/Echo", {"displayName": "Echo", "path": "echo"})

    assert service == {"id": SERVICE, "type": "Microsoft.ApiManagement/service", "name": "Contoso", "properties": {"publisherName": "Contoso"}}
    assert api["type"] == "Microsoft.ApiManagement/service/apis" and api["name"] == "Echo"
    response = get(client, f"{SERVICE}/apis/Echo".lower())
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == api


def test_a_missing_resource_is_404_with_an_arm_error_body(arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    arm.put(f"{SERVICE}/apis/echo", {})

    for path in (f"{SERVICE}/apis/nope", f"{RG}/other", f"{SERVICE}/apis/nope/operations", f"{RG}/other/apis"):
        response = get(client, path)
        assert response.status_code == 404, path
        assert error_code(response) == "ResourceNotFound"
        assert response.json()["error"]["message"]

    arm.delete(f"{SERVICE}/APIS/ECHO")
    assert get(client, f"{SERVICE}/apis/echo").status_code == 404


def test_listing_pages_through_next_links_with_every_child_once_including_revisions(
        arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    names = ["echo", "echo;rev=2", "echo;rev=3", "Orders", "petstore", "conference", "weather"]
    for name in random.sample(names, len(names)):
        arm.put(f"{SERVICE}/apis/{name}", {"displayName": name})
    arm.put(f"{SERVICE}/apis/echo/operations/get-echo", {})  # a grandchild: not listed
    arm.put(f"{RG}/other/apis/echo", {})  # another service's: not listed

    pages = list_pages(client, f"{SERVICE}/apis")

    assert [len(page["value"]) for page in pages] == [3, 3, 1]
    listed = [item["name"] for page in pages for item in page["value"]]
    assert listed == sorted(names, key=str.lower)
    for page in pages[:-1]:
        assert page["nextLink"].startswith(f"{arm.endpoint}{SERVICE}/apis?")
        assert "api-version=2024-05-01" in page["nextLink"] and "$skipToken=" in page["nextLink"].replace("%24", "$")
    assert all(item["type"] == "Microsoft.ApiManagement/service/apis" for page in pages for item in page["value"])

    arm.put(f"{SERVICE}/apis/zeta", {})  # a put after the first listing is seen by the next one
    assert [item["name"] for page in list_pages(client, f"{SERVICE}/apis") for item in page["value"]][-1] == "zeta"


def test_revision_ids_arrive_raw_or_percent_encoded(arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    revision = arm.put(f"{SERVICE}/apis/echo;rev=2", {"apiRevision": "2"})

    assert get(client, f"{SERVICE}/apis/echo;rev=2").json() == revision
    assert get(client, f"{SERVICE}/apis/echo%3Brev%3D2").json() == revision
    assert [r.path for r in arm.hits(";rev=2")] == [f"{SERVICE}/apis/echo;rev=2"] * 2


def test_top_makes_smaller_pages_and_an_empty_collection_is_an_empty_list(
        arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    arm.put_many((f"{SERVICE}/users/user-{n}", {"email": f"user{n}@contoso.com"}) for n in range(5))

    pages = list_pages(client, f"{SERVICE}/users", **{"$top": 2})
    assert [len(page["value"]) for page in pages] == [2, 2, 1]
    assert [item["type"] for item in pages[0]["value"]] == ["Microsoft.ApiManagement/service/users"] * 2
    assert "top=2" in pages[0]["nextLink"]

    assert list_pages(client, f"{SERVICE}/products") == [{"value": []}]


def test_no_token_is_401_with_a_bearer_challenge(arm: ArmStandIn) -> None:
    arm.put(SERVICE, {})

    response = get(anonymous_client(arm), SERVICE, bearer=False)

    assert response.status_code == 401
    assert error_code(response) == "AuthenticationFailed"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_the_bearer_policy_returns_a_401_without_looping(arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    assert get(client, SERVICE).status_code == 200
    arm.token = "rotated"  # the token the client holds is no longer accepted

    response = get(client, SERVICE)

    assert response.status_code == 401
    assert error_code(response) == "AuthenticationFailed"
    assert len(arm.hits("/service/contoso")) == 2  # one 200, one 401: no retry, no re-sent challenge
    # The policy drops its token on 401, but the credential's cache hands the same one back: no new token request.
    assert get(client, SERVICE).status_code == 401
    assert len(arm.hits("/msi/token")) == 1


def test_api_version_is_required_and_checked(arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})

    missing = get(client, SERVICE, {})
    wrong = get(client, SERVICE, {"api-version": "2021-08-01"})

    assert (missing.status_code, error_code(missing)) == (400, "MissingApiVersionParameter")
    assert (wrong.status_code, error_code(wrong)) == (400, "InvalidApiVersionParameter")


def test_only_get_is_served(arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})

    response = client.send_request(HttpRequest("PUT", client.format_url(SERVICE), params={"api-version": API_VERSION}, json={}), enforce_https=False)

    assert response.status_code == 405


def test_a_429_with_retry_after_is_retried_after_the_delay_and_consumed_once(
        arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    api = arm.put(f"{SERVICE}/apis/echo", {})
    arm.fail("/APIS/echo", 429, retry_after="1")

    response = get(client, f"{SERVICE}/apis/echo")

    assert response.status_code == 200 and response.json() == api
    first, second = arm.hits("/apis/echo")
    assert second.at - first.at >= 0.9
    assert get(client, f"{SERVICE}/apis/echo").status_code == 200
    assert len(arm.hits("/apis/echo")) == 3


def test_injected_500s_are_retried_then_surface_with_their_body(arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    arm.fail("/service/contoso", 500)
    assert get(client, SERVICE).status_code == 200  # retried once
    assert len(arm.hits("/service/contoso")) == 2

    arm.fail("/service/contoso", 500, times=2)
    response = get(client, SERVICE)
    assert response.status_code == 500 and error_code(response) == "InternalServerError"

    arm.fail("/service/contoso", 503, times=2, body={"error": {"code": "Busy", "message": "try later"}})
    response = get(client, SERVICE)
    assert response.status_code == 503 and error_code(response) == "Busy"
    assert get(client, SERVICE).status_code == 200
    assert len(arm.hits("/service/contoso")) == 7


def test_put_many_lists_tens_of_thousands_of_resources(arm: ArmStandIn, client: PipelineClient[HttpRequest, HttpResponse]) -> None:
    arm.put(SERVICE, {})
    names = [f"user-{n:05d}" for n in range(20_000)]
    arm.put_many((f"{SERVICE}/users/{name}", {"state": "active"}) for name in random.sample(names, len(names)))
    arm.page_size = 1000

    pages = list_pages(client, f"{SERVICE}/users")

    assert len(pages) == 20
    assert [item["name"] for page in pages for item in page["value"]] == names

    arm.delete(f"{SERVICE}/users/user-00000")
    pages = list_pages(client, f"{SERVICE}/users", **{"$top": 5000})
    assert [item["name"] for page in pages for item in page["value"]] == names[1:]
