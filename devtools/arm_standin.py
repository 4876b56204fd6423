"""A stand-in for Azure Resource Manager's API Management REST API and the App Service managed identity endpoint.

One loopback HTTP server speaks both documented wire formats, so the real Azure SDK can drive it:

* ``GET /msi/token?api-version=2019-08-01&resource=...`` with ``X-IDENTITY-HEADER`` - the App Service /
  Functions managed identity protocol that ``ManagedIdentityCredential`` uses when ``IDENTITY_ENDPOINT``
  and ``IDENTITY_HEADER`` are set. It issues ``token``.
* ``GET {resource id}?api-version=2024-05-01`` with ``Authorization: Bearer {token}`` - one resource, or, for
  a collection path, a page of its direct children with an absolute ``nextLink`` while more remain.

Resource ids are case-insensitive; they are served as they were put. Nothing is logged.

For syncs of large instances it also simulates what ARM does to a busy caller and to a listing by offset:

* `throttle(bucket, refill)`: ARM's token bucket for reads. Every ARM answer carries
  `x-ms-ratelimit-remaining-subscription-reads` (and `...-global-reads`, a bucket 15 times larger); an empty
  bucket answers 429 with `Retry-After`. `fail(..., 429, retry_after=...)` stands for the resource provider's own 429s.
  Every Retry-After sent is kept in `retry_afters` with its time, so a test can check that the client waited as long.
* `after_page`: called after each page of a listing is served, so a test can delete an item between two pages
  (the later items then move one offset back, and the next page skips one, as offset paging does).
* `generate(...)`: a collection of `count` items made on demand from their index, so 250,000 users need no
  250,000 stored documents.

It also serves the Activity Log's REST API (devtools/activity_log_route.py): `add_activity(subscription, events)` stores
EventData items, which `GET /subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values` serves by
its documented $filter, `activity_page_size` a page. `fail(...)` and `throttle(...)` apply to it as to every read.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import http
import json
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from devtools import activity_log_route
from devtools.local_server import ServedInThread

API_VERSION = "2024-05-01"
IDENTITY_API_VERSION = "2019-08-01"
IDENTITY_PATH = "/msi/token"
TOKEN_LIFETIME_SECONDS = 3600

_ERROR_CODES = {400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "ResourceNotFound",
                409: "Conflict", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
                503: "ServiceUnavailable", 504: "GatewayTimeout"}
_APIM_SERVICE = ("providers", "microsoft.apimanagement", "service")


@dataclass
class RecordedRequest:
    method: str
    path: str  # URL path, decoded, as received
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    at: float  # time.monotonic() when received


@dataclass
class _Fault:
    path_contains: str  # lower-cased
    status: int
    remaining: int
    retry_after: str | None
    body: dict[str, Any]


@dataclass
class _Generated:
    """`count` items named `{prefix}{n:0{width}d}` (so name order is index order), less the deleted ones."""

    collection_id: str
    prefix: str
    width: int
    count: int
    properties: Callable[[int], dict[str, Any]]
    deleted: list[int]  # sorted

    def name(self, n: int) -> str:
        return f"{self.prefix}{n:0{self.width}d}"

    def index(self, name: str) -> int | None:
        digits = name[len(self.prefix):] if name.lower().startswith(self.prefix.lower()) else ""
        n = int(digits) if digits.isdigit() and len(digits) == self.width else -1
        return n if 0 <= n < self.count and not self._gone(n) else None

    def _gone(self, n: int) -> bool:
        at = bisect.bisect_left(self.deleted, n)
        return at < len(self.deleted) and self.deleted[at] == n

    def document(self, n: int) -> dict[str, Any]:
        return _document(f"{self.collection_id}/{self.name(n)}", self.properties(n), None)

    def page(self, offset: int, size: int) -> tuple[list[dict[str, Any]], bool]:
        """The items at offsets [offset, offset + size) of the listing as it is now, and whether more follow."""
        n = offset
        while (moved := offset + bisect.bisect_right(self.deleted, n)) != n:  # the offset-th item that is left
            n = moved
        found: list[dict[str, Any]] = []
        while n < self.count and len(found) < size:
            if not self._gone(n):
                found.append(self.document(n))
            n += 1
        return found, offset + size < self.count - len(self.deleted)


@dataclass
class _Bucket:
    """ARM's token bucket for one caller's reads: `size` tokens, `refill` a second."""

    size: float
    refill: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.refill)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def arm_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _key(resource_id: str) -> str:
    """The case-insensitive lookup key of a resource id or path."""
    return "/" + resource_id.strip("/").lower()


def _parent(key: str) -> str:
    return key.rsplit("/", 1)[0]


def _is_collection(key: str) -> bool:
    """ARM paths alternate type/name segments, both before and after `/providers/{namespace}`."""
    segments = key.strip("/").split("/")
    if "providers" in segments:
        providers = len(segments) - 1 - segments[::-1].index("providers")
        after_namespace = len(segments) - providers - 2
        return after_namespace % 2 == 1 and after_namespace > 0
    return len(segments) % 2 == 1


def _apim_service(key: str) -> str | None:
    """The key of the API Management service a path lies strictly below, if any."""
    segments = key.strip("/").split("/")
    for i in range(len(segments) - 3):
        if tuple(segments[i:i + 3]) == _APIM_SERVICE and len(segments) > i + 4:
            return "/" + "/".join(segments[:i + 4])
    return None


def resource_type(resource_id: str) -> str:
    """`.../providers/Microsoft.ApiManagement/service/s/apis/a` -> `Microsoft.ApiManagement/service/apis`."""
    segments = resource_id.strip("/").split("/")
    if "providers" not in segments:
        return "Microsoft.Resources/" + (segments[-2] if len(segments) >= 2 else segments[-1])
    start = len(segments) - segments[::-1].index("providers")
    return "/".join([segments[start], *segments[start + 1::2]])


def _document(resource_id: str, properties: dict[str, Any], type_: str | None) -> dict[str, Any]:
    return {"id": resource_id, "type": type_ or resource_type(resource_id), "name": resource_id.rstrip("/").rsplit("/", 1)[-1],
            "properties": properties}


class ArmStandIn(ServedInThread):
    """Context manager: `with ArmStandIn() as arm:`; start()/stop() also available.

    The port is bound when the object is made, so `endpoint` is known before `start()`.
    """
    _thread_name, _poll = "arm-standin", 0.05

    def __init__(self, page_size: int = 100) -> None:
        self.page_size = page_size
        self.token = secrets.token_urlsafe(32)
        self.identity_header = secrets.token_urlsafe(24)
        self.requests: list[RecordedRequest] = []
        self.token_resources: list[str] = []  # the `resource` of every token issued, in order
        self._lock = threading.Lock()
        self._resources: dict[str, dict[str, Any]] = {}  # key -> ARM document
        self._children: dict[str, dict[str, dict[str, Any]]] = {}  # collection key -> {key: ARM document}
        self._sorted: dict[str, list[dict[str, Any]]] = {}  # collection key -> children sorted by key (a cache)
        self._faults: list[_Fault] = []
        self._activity: dict[str, list[dict[str, Any]]] = {}  # subscription id (lower-cased) -> its EventData items
        self.activity_page_size = 200
        self._generated: dict[str, _Generated] = {}  # collection key -> its generated items
        self._buckets: tuple[_Bucket, _Bucket] | None = None  # the principal's and the subscription's (global) reads
        self.retry_afters: list[tuple[float, str]] = []  # every Retry-After sent: when (time.monotonic()) and its value
        self.after_page: Callable[[str, int], None] | None = None  # (collection path, offset) after a page is served
        self._server = _Server(self)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.identity_endpoint = self.endpoint + IDENTITY_PATH

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def identity_env(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": self.identity_endpoint, "IDENTITY_HEADER": self.identity_header}

    # -- state ---------------------------------------------------------------------------------------------------

    def put(self, resource_id: str, properties: dict[str, Any], *, type_: str | None = None) -> dict[str, Any]:
        """Store (or replace) a resource; returns the ARM JSON it will serve: `{"id": resource_id (as given), "type": derived
        (e.g. "Microsoft.ApiManagement/service/users") or `type_`, "name": last segment, "properties": properties}`."""
        document = _document(resource_id, properties, type_)
        key = _key(resource_id)
        with self._lock:
            self._store(key, document)
            self._sorted.pop(_parent(key), None)
        return document

    def put_many(self, resources: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Bulk `put` (no per-item locking or cache invalidation)."""
        touched: set[str] = set()
        with self._lock:
            for resource_id, properties in resources:
                key = _key(resource_id)
                self._store(key, _document(resource_id, properties, None))
                touched.add(_parent(key))
            for collection in touched:
                self._sorted.pop(collection, None)

    def _store(self, key: str, document: dict[str, Any]) -> None:
        self._resources[key] = document
        self._children.setdefault(_parent(key), {})[key] = document

    def generate(self, collection_id: str, prefix: str, count: int, properties: Callable[[int], dict[str, Any]],
                 width: int = 6) -> None:
        """A collection of `count` items, `{prefix}{n:06d}` with `properties(n)`, made when served (not stored)."""
        with self._lock:
            self._generated[_key(collection_id)] = _Generated(collection_id.rstrip("/"), prefix, width, count, properties, [])

    def throttle(self, bucket: int, refill: float, *, global_bucket: int | None = None) -> None:
        """ARM's read throttling from now on: a bucket of `bucket` reads refilled at `refill` a second for this caller,
        and one `global_bucket` large (15 times by default, as ARM's global limit) for the subscription."""
        now = time.monotonic()
        size = global_bucket if global_bucket is not None else bucket * 15
        with self._lock:
            self._buckets = (_Bucket(bucket, refill, bucket, now), _Bucket(size, refill * 15, size, now))

    def delete(self, resource_id: str) -> None:
        """Delete a resource and everything under it, as ARM does (a workspace's APIs, products, ...; an API's
        releases): each then answers 404, and a collection under it too."""
        key = _key(resource_id)
        with self._lock:
            generated = self._generated.get(_parent(key))
            n = generated.index(key.rsplit("/", 1)[-1]) if generated is not None else None
            if generated is not None and n is not None:
                bisect.insort(generated.deleted, n)
                return
            self._remove(key)
            below = key + "/"
            for collection in [c for c in self._children if c.startswith(below)]:
                for child in list(self._children.get(collection, {})):
                    self._remove(child)
            for collection in [c for c in self._generated if c.startswith(below)]:
                del self._generated[collection]

    def _remove(self, key: str) -> None:
        self._resources.pop(key, None)
        siblings = self._children.get(_parent(key))
        if siblings is not None:
            siblings.pop(key, None)
            if not siblings:
                del self._children[_parent(key)]
        self._sorted.pop(_parent(key), None)

    def fail(self, path_contains: str, status: int, *, times: int = 1, retry_after: str | None = None,
             body: dict[str, Any] | None = None) -> None:
        """The next `times` GET requests whose path contains `path_contains` (case-insensitive) get `status` with an
        ARM error body (or `body`) and a `Retry-After` header when given. Faults are consumed in order."""
        if times < 1:
            raise ValueError("times must be at least 1")
        code = _ERROR_CODES.get(status) or http.HTTPStatus(status).phrase.replace(" ", "")
        fault = _Fault(path_contains.lower(), status, times, retry_after,
                       body if body is not None else arm_error(code, f"Injected fault: {status} {code}."))
        with self._lock:
            self._faults.append(fault)

    def add_activity(self, subscription: str, events: Iterable[dict[str, Any]]) -> None:
        """Activity Log events (EventData items, see activity_log_route.event_data) of a subscription."""
        with self._lock:
            self._activity.setdefault(subscription.lower(), []).extend(events)

    def hits(self, path_contains: str) -> list[RecordedRequest]:
        needle = path_contains.lower()
        with self._lock:
            return [r for r in self.requests if needle in r.path.lower()]

    # -- serving -------------------------------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> _Fault | None:
        """Record a request and consume the first pending fault that matches it (GET only)."""
        with self._lock:
            self.requests.append(request)
            if request.method != "GET":
                return None
            path = request.path.lower()
            for fault in self._faults:
                if fault.path_contains in path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _identity(self, request: RecordedRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The App Service managed identity protocol (errors as `{"statusCode", "message"}`, as App Service sends)."""
        def error(status: int, message: str) -> tuple[int, dict[str, Any], dict[str, str]]:
            return status, {"statusCode": status, "message": message}, {}

        if not secrets.compare_digest(request.headers.get("x-identity-header", ""), self.identity_header):
            return error(401, "The X-IDENTITY-HEADER header is missing or wrong.")
        if request.query.get("api-version") != IDENTITY_API_VERSION:
            return error(400, f"api-version must be {IDENTITY_API_VERSION}.")
        resource = request.query.get("resource")
        if not resource:
            return error(400, "The resource parameter is required.")
        with self._lock:
            self.token_resources.append(resource)
        body = {"access_token": self.token, "expires_on": str(int(time.time()) + TOKEN_LIFETIME_SECONDS),
                "resource": resource, "token_type": "Bearer"}
        if "client_id" in request.query:
            body["client_id"] = request.query["client_id"]
        return 200, body, {}

    def _arm(self, request: RecordedRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        authorization = request.headers.get("authorization", "")
        if not secrets.compare_digest(authorization, f"Bearer {self.token}"):
            reason = "missing" if not authorization else "invalid"
            challenge = ('Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
                         f'error_description="The access token is {reason}."')
            return 401, arm_error("AuthenticationFailed", f"Authentication failed. The access token is {reason}."), \
                {"WWW-Authenticate": challenge}
        activity = activity_log_route.PATH.match(request.path)
        if activity is not None:
            with self._lock:
                events = list(self._activity.get(activity.group("sub").lower(), []))
            return activity_log_route.answer(events, request.path, request.query, self.endpoint, self.activity_page_size)
        api_version = request.query.get("api-version")
        if api_version is None:
            return 400, arm_error("MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."), {}
        if api_version != API_VERSION:
            return 400, arm_error("InvalidApiVersionParameter",
                                  f"The api-version '{api_version}' is invalid. The supported versions are '{API_VERSION}'."), {}
        key = _key(request.path)
        with self._lock:
            document = self._resources.get(key)
            generated = self._generated.get(_parent(key))
            n = generated.index(key.rsplit("/", 1)[-1]) if generated is not None and document is None else None
            if generated is not None and n is not None:
                document = generated.document(n)
        if document is not None:
            return 200, document, {}
        if _is_collection(key):
            return self._list(request, key)
        return 404, arm_error("ResourceNotFound", f"The Resource '{request.path}' was not found."), {}

    def _list(self, request: RecordedRequest, key: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        options = {name.lower(): value for name, value in request.query.items()}
        try:
            offset = int(base64.urlsafe_b64decode(options["$skiptoken"]).decode()) if "$skiptoken" in options \
                else int(options.get("$skip", "0"))
            size = min(self.page_size, int(options.get("$top", self.page_size)))
        except (ValueError, binascii.Error):
            return 400, arm_error("InvalidParameter", "$skipToken, $skip or $top is invalid."), {}
        if offset < 0 or size < 1:
            return 400, arm_error("InvalidParameter", "$skip and $top must be positive."), {}
        service = _apim_service(key)
        with self._lock:
            if service is not None and service not in self._resources:
                return 404, arm_error("ResourceNotFound", f"The API Management service '{service}' was not found."), {}
            generated = self._generated.get(key)
            items = self._sorted.get(key) if generated is None else []
            if generated is not None:
                page, more = generated.page(offset, size)
            elif items is None:
                children = self._children.get(key, {})
                if not children and _parent(key) not in self._resources:
                    return 404, arm_error("ResourceNotFound", f"The parent resource of '{request.path}' was not found."), {}
                items = self._sorted[key] = [children[k] for k in sorted(children)]
            if generated is None:
                assert items is not None
                page, more = items[offset:offset + size], offset + size < len(items)
        body: dict[str, Any] = {"value": page}
        if more:
            query = {name: value for name, value in request.query.items() if name.lower() not in ("$skiptoken", "$skip")}
            query["$skipToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            body["nextLink"] = f"{self.endpoint}{request.path}?{urlencode(query)}"
        if self.after_page is not None:
            self.after_page(request.path, offset)
        return 200, body, {}

    def _respond(self, request: RecordedRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._record(request)
        if fault is not None:
            if fault.retry_after is not None:
                with self._lock:
                    self.retry_afters.append((request.at, fault.retry_after))
            return fault.status, fault.body, {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if request.method != "GET":
            return 405, arm_error("MethodNotAllowed", f"The stand-in serves GET only, not {request.method}."), {"Allow": "GET"}
        if request.path == IDENTITY_PATH:
            return self._identity(request)
        throttled = self._take_read(request.at)
        if throttled is not None:
            return throttled
        status, body, headers = self._arm(request)
        return status, body, {**headers, **self._remaining()}

    def _take_read(self, now: float) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """None when the read may go on, else ARM's 429 with Retry-After (both buckets are charged, as ARM's are)."""
        with self._lock:
            if self._buckets is None:
                return None
            mine, everyone = self._buckets
            if mine.take(now) and everyone.take(now):
                return None
            short = min(mine, everyone, key=lambda b: b.tokens / b.refill)
            wait = str(max(1, math.ceil((1 - short.tokens) / short.refill)))
            self.retry_afters.append((now, wait))
        message = "Number of 'read' requests for subscription actor exceeded. Please try again later."
        return 429, arm_error("SubscriptionRequestsThrottled", message), {"Retry-After": wait, **self._remaining()}

    def _remaining(self) -> dict[str, str]:
        with self._lock:
            if self._buckets is None:
                return {}
            mine, everyone = self._buckets
            return {"x-ms-ratelimit-remaining-subscription-reads": str(int(mine.tokens)),
                    "x-ms-ratelimit-remaining-subscription-global-reads": str(int(everyone.tokens))}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, standin: ArmStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: without this, delayed ACKs add 40 ms a response

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlsplit(self.path)
        request = RecordedRequest(method=self.command, path=unquote(url.path),
                                  query=dict(parse_qsl(url.query, keep_blank_values=True)),
                                  headers={name.lower(): value for name, value in self.headers.items()}, at=time.monotonic())
        status, body, headers = cast(_Server, self.server).standin._respond(request)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass
