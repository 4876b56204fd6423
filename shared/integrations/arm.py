"""A lean Azure Resource Manager client for API Management: GET one resource, list a collection.

Built on azure-core's pipeline (retries, bearer tokens, logging) rather than azure-mgmt-apimanagement:
see docs/design.md for the import-time and size figures behind that choice.
"""

from __future__ import annotations

import builtins
import email.utils
import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HeadersPolicy,
    HttpLoggingPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest, HttpResponse

from shared.domain.errors import one_line

API_VERSION = "2024-05-01"
# What ARM says is left of the caller's read allowance, on every read it answers (docs/design.md, "Syncs of
# very large instances"): the principal's own bucket and the subscription's global one.
REMAINING_READS_HEADERS = ("x-ms-ratelimit-remaining-subscription-reads", "x-ms-ratelimit-remaining-subscription-global-reads")
DEFAULT_ENDPOINT = "https://management.azure.com"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
log = logging.getLogger("apim_inventory.arm")


class ArmError(AzureError):
    """ARM answered with an error (after the retries the pipeline makes)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"ARM {status} {code}: {message}")
        self.status = status
        self.code = code
        self.retry_after = retry_after


class ArmNotFound(ArmError):
    pass


class ArmUnreachable(ArmError):
    """No answer from ARM: the connection failed or timed out (after the pipeline's retries)."""

    def __init__(self, endpoint: str, reason: str) -> None:
        AzureError.__init__(self, f"ARM at {endpoint} did not answer: {reason}")
        self.status, self.code, self.retry_after = 0, "Unreachable", None


class ArmCredentialError(ClientAuthenticationError):
    """The credential for ARM could not get a token: nothing can be read from ARM until it can."""


class ArmThrottled(ArmError):
    """429 with a Retry-After longer than the client waits by itself."""


class _RetryWithinLimit(RetryPolicy[Any, Any]):
    """azure-core's retries (408, 429, 5xx, network), which honour Retry-After, except that a
    Retry-After beyond `limit` seconds is returned to the caller instead of slept through."""

    def __init__(self, limit: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit = limit

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        wait = self.get_retry_after(response)
        return super().is_retry(settings, response) and (wait is None or wait <= self.limit)


class _SharedTokenPolicy(BearerTokenCredentialPolicy[Any, Any]):
    """azure-core's bearer-token policy with its cached token guarded by a lock. The synchronous policy (unlike its
    async twin) has none, and the worker's threads share one client: threads that start together each fetch a token,
    and a 401 in one, which drops the token, can come between another's check and its read of it. Here the check,
    the fetch and the read happen under one lock, and dropping the token waits for them."""

    def __init__(self, credential: Any, *scopes: str) -> None:
        self._lock = threading.RLock()
        self._held: Any = None
        super().__init__(credential, *scopes)

    @property  # the base class reads and writes self._token; these route it through the lock
    def _token(self) -> Any:
        return self._held

    @_token.setter
    def _token(self, value: Any) -> None:
        with self._lock:
            self._held = value

    def on_request(self, request: PipelineRequest[Any]) -> None:
        with self._lock:
            super().on_request(request)

    def authorize_request(self, request: PipelineRequest[Any], *scopes: str, **kwargs: Any) -> None:
        with self._lock:
            super().authorize_request(request, *scopes, **kwargs)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class ArmClient:
    def __init__(self, credential: Any, endpoint: str = DEFAULT_ENDPOINT, *, audience: str | None = None,
                 retry_total: int = 3, retry_after_limit: float = 30.0, timeout: float = 30.0,
                 transport: HttpTransport[Any, Any] | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        self._host = parts.netloc.lower()
        # Bearer tokens only ever travel over TLS, except to a stand-in on this machine.
        self._plain_http_ok = parts.scheme == "http" and (parts.hostname or "") in LOOPBACK
        self._timeout = timeout
        scope = f"{(audience or DEFAULT_ENDPOINT).rstrip('/')}/.default"
        policies = [
            HeadersPolicy({"Accept": "application/json"}),
            UserAgentPolicy("apim-inventory"),
            _RetryWithinLimit(retry_after_limit, retry_total=retry_total, retry_backoff_factor=0.5),
            _SharedTokenPolicy(credential, scope),
            HttpLoggingPolicy(),
        ]
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            base_url=self.endpoint, policies=policies, transport=transport)
        self.remaining_reads: int | None = None  # the lower of REMAINING_READS_HEADERS on the last answer that had one

    def url(self, resource_id: str, *, api_version: str = API_VERSION, query: Mapping[str, str] | None = None) -> str:
        """The URL of a resource or collection: API Management's api-version unless another provider's is given
        (the Activity Log's), with further query parameters percent-encoded (an OData $filter)."""
        path = quote("/" + resource_id.strip("/"), safe="/;=@:,-._~!$&'()*+")
        extra = f"&{urlencode(query, quote_via=quote, safe='$')}" if query else ""
        return f"{self.endpoint}{path}?api-version={quote(api_version, safe='')}{extra}"

    def get(self, resource_id: str) -> dict[str, Any]:
        """One resource's JSON. Raises ArmNotFound, ArmThrottled or ArmError."""
        return self._call(self.url(resource_id))

    def list(self, collection_id: str) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following nextLink page by page."""
        url: str | None = self.url(collection_id)
        while url:
            items, url = self.page(url)
            yield from items

    def page(self, url: str) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """One page of a collection (its first page's URL is `url(collection_id)`) and its nextLink, checked to
        point at this endpoint, so that a bearer token never follows a link elsewhere."""
        page = self._call(url)
        items = page.get("value") or []
        link = page.get("nextLink") or None
        if not isinstance(items, builtins.list) or not all(isinstance(item, dict) for item in items):
            raise ArmError(200, "BadResponse", f"the value of {url[:200]} is not a list of objects")
        if link is not None and (not isinstance(link, str) or urlsplit(link).netloc.lower() != self._host):
            raise ArmError(0, "ForeignNextLink", f"nextLink points at another host: {str(link)[:200]}")
        return items, link

    def close(self) -> None:
        self._client.close()

    def _note_remaining(self, response: HttpResponse) -> None:
        found = []
        for name in REMAINING_READS_HEADERS:
            try:
                found.append(int(response.headers.get(name, "")))
            except ValueError:
                continue
        if found:
            self.remaining_reads = min(found)

    def _call(self, url: str) -> dict[str, Any]:
        try:
            response = self._client.send_request(
                HttpRequest("GET", url), enforce_https=not self._plain_http_ok,
                connection_timeout=self._timeout, read_timeout=self._timeout)
        except ClientAuthenticationError as exc:  # raised by the credential: no request was sent
            raise ArmCredentialError(str(exc.message or exc)) from exc
        except AzureError as exc:  # the network, a timeout: named as ARM's, so that no caller blames another part
            raise ArmUnreachable(self.endpoint, one_line(exc, 300)) from exc
        self._note_remaining(response)
        if response.status_code == 200:
            body = response.json()
            if not isinstance(body, dict):
                raise ArmError(200, "BadResponse", f"expected a JSON object from {url[:200]}")
            return body
        raise _error(response)


def _error(response: HttpResponse) -> ArmError:
    code, message = "Unknown", response.reason or ""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code, message = str(error.get("code") or code), str(error.get("message") or message)
    except ValueError:
        pass
    wait = retry_after_seconds(response.headers.get("Retry-After"))
    cls = ArmNotFound if response.status_code == 404 else ArmThrottled if response.status_code == 429 else ArmError
    return cls(response.status_code, code, one_line(message, 500), wait)
