"""GatewayLogs records as APIM's diagnostic setting archives them, generated from an inventory description: seeded, so
the same description gives the same lines. Tests, the benchmark and the demo use them (devtools/gateway_log_blobs.py
writes them into append blobs at the archive's paths).

The shape is Microsoft's sample record (top-level `time`, upper-case `resourceId`, `properties` with the gateway's
fields; an empty field is omitted, never null). Ids come mostly bare (`orders`, `GetOrder`, `master`), some as paths
(`/apis/orders`) and revisions as `orders;rev=2`, as the sources differ. The mix: mostly 200, some 401/403/429
(rejected at the gateway: no backend call), 404, 400, 500/502/503 (a backend failure or no backend at all), a few 0
(the client went away) and 302; skewed traffic (a few subscriptions make most calls); requests with no subscription
and with `master`; ids the inventory lacks when asked; a few bad lines (not JSON, not an object, no time, no resource
id, a line cut in two). Records arrive 0-10 minutes after their time, a few hours late, and `Truth` counts what a
single clean pass over the good records must find, by the record's own hour."""

from __future__ import annotations

import bisect
import heapq
import json
import math
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# (response code, weight, whether the gateway called the backend): Microsoft's categories in docs/design.md.
CODES = ((200, 7800, True), (201, 400, True), (204, 200, True), (304, 100, True), (302, 50, True), (401, 300, False),
         (403, 100, False), (429, 200, False), (404, 250, True), (400, 150, True), (500, 100, True), (502, 50, True),
         (503, 80, False), (0, 30, True))
BAD_KINDS = ("not-json", "not-an-object", "no-time", "no-resource-id", "cut")
NONE_SUBSCRIPTION = "(none)"  # how the usage table names requests without a subscription (docs/schema.md)
MASTER = "master"  # the built-in all-access subscription: its name in the logs


@dataclass(frozen=True)
class Api:
    name: str
    operations: tuple[str, ...]
    revisions: tuple[int, ...] = (1,)  # the others than the current are called as `name;rev=N`
    backend: str | None = None  # a backend entity the API's policy routes to (`backendId`), else its service URL
    open: bool = False  # subscriptionRequired false: called without a key
    current: int | None = None  # the current revision: the highest when None


@dataclass(frozen=True)
class Product:
    name: str
    apis: tuple[str, ...]


@dataclass(frozen=True)
class Subscription:
    name: str
    product: str | None = None  # None: scoped to an API or to all APIs
    user: str | None = None  # the owner, logged as `userId`
    weight: float = 1.0


@dataclass(frozen=True)
class Service:
    """What the traffic of one APIM instance can name. `resource_id` is its ARM id (any case: logs upper-case it)."""

    resource_id: str
    apis: tuple[Api, ...]
    products: tuple[Product, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    users: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    location: str = "West Europe"
    weight: float = 1.0

    @property
    def name(self) -> str:
        return self.resource_id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Traffic:
    """`records` good records over `hours` hours from `start` (UTC), plus one bad line in `bad_every`. `unknown` names
    ids the inventory lacks, as (kind, id) with kind api, product, subscription, user or backend: about one
    request in `unknown_every` names one."""

    services: tuple[Service, ...]
    start: datetime
    hours: int
    records: int
    seed: int = 16
    unknown: tuple[tuple[str, str], ...] = ()
    unknown_every: int = 200
    bad_every: int = 5000
    late_share: float = 0.002  # records arriving 1-47 hours after their time (the archive allows 48)
    until: datetime | None = None  # the archive as read at this moment: no line arrives later


@dataclass(frozen=True)
class Line:
    """One line of the archive: its text (no newline), when it arrived (which hour's blob holds it) and its service."""

    text: str
    arrival: datetime
    service: Service
    bad: str | None = None  # the generator's kind of bad line (BAD_KINDS), None for a good record


@dataclass
class Truth:
    """What a clean pass over the lines must count. `requests` by (service key, kind, id, hour "YYYY-MM-DDTHH"),
    kind `service` with id "-" for every record; ids as the usage table keeps them: lower case, the operation
    as `{api}/{operation}`, a revision counted as `api;rev=N` and as its API, no subscription as `(none)`.
    `codes` by (service key, response code); `bad` by the reason a reader gives (a cut line is two `not-json`)."""

    records: int = 0
    requests: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    codes: Counter[tuple[str, int]] = field(default_factory=Counter)
    bad: Counter[str] = field(default_factory=Counter)
    bad_kinds: Counter[str] = field(default_factory=Counter)
    unknown: Counter[tuple[str, str]] = field(default_factory=Counter)
    late: int = 0  # good records in a later hour's blob than their own
    first: datetime | None = None
    last: datetime | None = None

    @property
    def pairs(self) -> int:
        """Distinct hour x resource pairs (every kind, the service itself included)."""
        return len(self.requests)

    def count(self, service: Service, moment: datetime, code: int, named: list[tuple[str, str]]) -> None:
        self.records += 1
        hour = f"{moment:%Y-%m-%dT%H}"
        for kind, rid in [("service", "-"), *named]:
            self.requests[(service.key, kind, rid, hour)] += 1
        self.codes[(service.key, code)] += 1
        self.first = moment if self.first is None else min(self.first, moment)
        self.last = moment if self.last is None else max(self.last, moment)


def timestamp(moment: datetime) -> str:
    """Seven fractional digits and a Z, as the archive writes `time`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def service_resource_id(service: Service) -> str:
    return service.resource_id.upper()


class _Picker:
    """Weighted choices by cumulative weights (bisect), cheaper than rng.choices per call."""

    def __init__(self, rng: random.Random, items: list[object], weights: list[float]) -> None:
        self.rng, self.items = rng, items
        total, self.cum = 0.0, []
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    def pick(self) -> object:
        return self.items[min(bisect.bisect_right(self.cum, self.rng.random() * self.total), len(self.items) - 1)]


def _zipf(n: int) -> list[float]:
    """A few make most of the calls, as in real traffic."""
    return [1.0 / (i + 1) ** 1.1 for i in range(n)]


class _ServiceTraffic:
    """The choices of one service: its subscriptions by weight, their products' APIs, the open APIs."""

    def __init__(self, rng: random.Random, service: Service) -> None:
        self.service, self.rng = service, rng
        self.apis = {a.name: a for a in service.apis}
        self.products = {p.name: p for p in service.products}
        subs = list(service.subscriptions)
        weights = [s.weight * z for s, z in zip(subs, _zipf(len(subs)), strict=True)]
        self.subscriptions = _Picker(rng, list(subs), weights)
        self.all_apis = _Picker(rng, list(service.apis), _zipf(len(service.apis)))
        open_apis = [a for a in service.apis if a.open]
        self.open_apis = _Picker(rng, list(open_apis), [1.0] * len(open_apis)) if open_apis else None
        self.ips = [f"{rng.randint(20, 220)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(40)]
        self.host = f"{service.name.lower()}.azure-api.net"


class Generator:
    """The lines of `traffic`, in arrival order (`lines()`), and `truth`, complete once `lines()` is exhausted."""

    def __init__(self, traffic: Traffic) -> None:
        if traffic.records < 0 or traffic.hours < 1 or not traffic.services:
            raise ValueError("traffic needs services, at least an hour and a record count")
        for s in traffic.services:
            if not s.apis:
                raise ValueError(f"service {s.name} has no API to call")
        self.traffic = traffic
        self.rng = random.Random(traffic.seed)
        self.truth = Truth()
        self.services = _Picker(self.rng, [_ServiceTraffic(self.rng, s) for s in traffic.services], [s.weight for s in traffic.services])
        self.codes = _Picker(self.rng, list(CODES), [float(w) for _, w, _ in CODES])

    def lines(self) -> Iterator[Line]:
        """Records in time order, each arriving 0-10 minutes later (a few hours later); yielded by arrival. Only the
        records not yet arrived are held (about ten minutes' worth, and the late ones)."""
        t = self.traffic
        span = t.hours * 3600.0
        period = t.bad_every + 1 if t.bad_every else 0  # one bad line after every `bad_every` records: exactly `records` good
        total = t.records + (t.records // t.bad_every if t.bad_every else 0)
        waiting: list[tuple[datetime, int, int, Line]] = []
        step = span / max(total, 1)
        for n in range(total):
            moment = t.start + timedelta(seconds=min(span - 1e-6, (n + self.rng.random()) * step))
            late = self.rng.random() < t.late_share
            delay = timedelta(hours=self.rng.uniform(1, 47)) if late else timedelta(seconds=self.rng.uniform(0, 600))
            arrival = moment + delay if t.until is None else max(moment, min(moment + delay, t.until))
            bad = period and n % period == period - 1
            for i, line in enumerate(self._bad(moment, arrival) if bad else [self._good(moment, arrival)]):
                heapq.heappush(waiting, (line.arrival, n, i, line))
            while waiting and waiting[0][0] <= moment:
                yield heapq.heappop(waiting)[3]
        while waiting:
            yield heapq.heappop(waiting)[3]

    # -- good records ----------------------------------------------------------------------------------------------

    def _good(self, moment: datetime, arrival: datetime) -> Line:
        st: _ServiceTraffic = self.services.pick()  # type: ignore[assignment]
        record, named, code = self._record(st, moment)
        self.truth.count(st.service, moment, code, named)
        if f"{arrival:%Y%m%d%H}" != f"{moment:%Y%m%d%H}":
            self.truth.late += 1
        return Line(json.dumps(record, separators=(", ", ": ")), arrival, st.service)

    def _record(self, st: _ServiceTraffic, moment: datetime) -> tuple[dict[str, object], list[tuple[str, str]], int]:
        rng = self.rng
        picked: tuple[int, int, bool] = self.codes.pick()  # type: ignore[assignment]
        code, _, called = picked
        props: dict[str, object] = {}
        named: list[tuple[str, str]] = []
        unknown = self.traffic.unknown and rng.random() * self.traffic.unknown_every < 1
        ghost = rng.choice(self.traffic.unknown) if unknown else None
        sub, api = self._caller(st)
        if ghost and ghost[0] == "subscription":
            sub = Subscription(ghost[1])
        if ghost and ghost[0] == "api":
            api = Api(ghost[1], ("GetItem", "ListItems"))
        matched = not (code == 404 and rng.random() < 0.4)  # a 404 at the gateway: no API matched the URL
        method, op = "GET", None
        if matched:
            op = rng.choice(api.operations) if api.operations else None
            method = _method(op or "get")
            head = api.current or max(api.revisions)
            others = [r for r in api.revisions if r != head]
            revision = rng.choice(others) if others and rng.random() < 0.1 else head
            current = revision == head
            raw_api = api.name if current else f"{api.name};rev={revision}"
            props["apiId"] = self._form("apis", raw_api)
            named.append(("api", raw_api.lower()))
            if not current:
                named.append(("api", api.name.lower()))
            props["apiRevision"] = str(revision)
            if op:
                props["operationId"] = self._form("operations", op, f"/apis/{api.name}")
                named.append(("operation", f"{api.name.lower()}/{op.lower()}"))
        if sub is not None:
            if sub.product or (ghost and ghost[0] == "product"):
                product = ghost[1] if ghost and ghost[0] == "product" else str(sub.product)
                props["productId"] = self._form("products", product)
                named.append(("product", product.lower()))
            props["apimSubscriptionId"] = self._form("subscriptions", sub.name) if sub.name != MASTER else MASTER
            named.append(("subscription", sub.name.lower()))
            user = ghost[1] if ghost and ghost[0] == "user" else sub.user
            if user:
                props["userId"] = self._form("users", user)
                named.append(("user", user.lower()))
        else:
            named.append(("subscription", NONE_SUBSCRIPTION))
        backend = ghost[1] if ghost and ghost[0] == "backend" and matched else api.backend if matched else None
        if backend and called:
            props["backendId"] = self._form("backends", backend)
            named.append(("backend", backend.lower()))
        if ghost and (ghost[0], ghost[1].lower()) in named:
            self.truth.unknown[ghost] += 1
        return self._shape(st, moment, code, called and matched, method, api, op, props), named, code

    def _caller(self, st: _ServiceTraffic) -> tuple[Subscription | None, Api]:
        """Who calls what: mostly a subscription of the inventory and an API its product holds; some requests with no
        key (an open API), some with `master`."""
        roll = self.rng.random()
        if (roll < 0.05 and st.open_apis) or not st.service.subscriptions:
            api = st.open_apis.pick() if st.open_apis else st.all_apis.pick()
            return None, api  # type: ignore[return-value]
        if roll < 0.07:
            return Subscription(MASTER), st.all_apis.pick()  # type: ignore[return-value]
        sub: Subscription = st.subscriptions.pick()  # type: ignore[assignment]
        product = st.products.get(sub.product or "")
        names = [n for n in (product.apis if product else ()) if n in st.apis]
        return sub, st.apis[self.rng.choice(names)] if names else st.all_apis.pick()  # type: ignore[return-value]

    def _form(self, collection: str, name: str, parent: str = "") -> str:
        """Mostly the bare name, as Microsoft's sample has it; sometimes a path, as other sources write it."""
        return f"{parent}/{collection}/{name}" if self.rng.random() < 0.08 else name

    def _shape(self, st: _ServiceTraffic, moment: datetime, code: int, called: bool, method: str, api: Api,
               op: str | None, props: dict[str, object]) -> dict[str, object]:
        rng = self.rng
        if code in (401, 403, 429) or not called:
            duration = round(rng.uniform(0.5, 6.0))
        elif code == 503 or (code == 500 and rng.random() < 0.2):
            duration = round(rng.choice((rng.uniform(5, 50), rng.uniform(20000, 30000))))
        else:
            duration = max(1, round(math.exp(rng.gauss(4.3, 0.8))))  # median about 75 ms, a long tail
        path = f"/{api.name.lower()}/{(op or 'missing').lower()}"
        backend_url = f"https://{api.backend or api.name.lower()}.backend.example{path}"
        properties: dict[str, object] = {"method": method, "url": f"https://{st.host}{path}"}
        if called and code != 503:
            properties["backendResponseCode"] = 200 if code == 0 else 302 if code == 302 else code
        properties |= {"responseCode": code, "responseSize": rng.randint(120, 60000) if code else 0, "cache": "none"}
        if called:
            properties["backendTime"] = max(0, duration - rng.randint(0, 5))
        properties |= {"requestSize": rng.randint(200, 2000), **props, "clientTime": rng.randint(0, 80),
                       "clientProtocol": "HTTP/1.1", "clientTlsVersion": "1.2"}
        if called:
            properties |= {"backendProtocol": "HTTP/1.1", "backendMethod": method, "backendUrl": backend_url}
        if code in (0, 503):
            properties["lastError"] = {"elapsed": duration, "source": "forward-request", "scope": "api", "section": "backend",
                                       "reason": "ClientConnectionFailure" if code == 0 else "BackendConnectionFailure",
                                       "message": "The client closed the connection" if code == 0 else "Unable to connect to the remote server"}
        level = 4 if 100 <= code < 400 else 3 if code < 500 and code else 2
        return {"Level": level, "isRequestSuccess": 200 <= code < 400, "time": timestamp(moment),
                "operationName": "Microsoft.ApiManagement/GatewayLogs", "category": "GatewayLogs", "durationMs": duration,
                "callerIpAddress": rng.choice(st.ips), "correlationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "location": st.service.location, "properties": properties, "resourceId": service_resource_id(st.service)}

    # -- bad lines -------------------------------------------------------------------------------------------------

    def _bad(self, moment: datetime, arrival: datetime) -> list[Line]:
        kind = BAD_KINDS[self.truth.bad_kinds.total() % len(BAD_KINDS)]
        self.truth.bad_kinds[kind] += 1
        st: _ServiceTraffic = self.services.pick()  # type: ignore[assignment]
        record = self._shape(st, moment, 200, True, "GET", st.service.apis[0], None, {})
        if kind == "not-json":
            texts = [f"{timestamp(moment)} GatewayLogs request failed to serialise"]
        elif kind == "not-an-object":
            texts = [json.dumps([record["time"], record["resourceId"]])]
        elif kind == "no-time":
            texts = [json.dumps({k: v for k, v in record.items() if k != "time"})]
        elif kind == "no-resource-id":
            texts = [json.dumps({k: v for k, v in record.items() if k != "resourceId"})]
        else:  # a record broken by a newline: two lines, neither of them JSON
            text = json.dumps(record)
            cut = len(text) // 3 + self.rng.randint(0, len(text) // 3)
            texts = [text[:cut], text[cut:]]
        self.truth.bad["not-json" if kind == "cut" else kind] += len(texts)
        return [Line(text, arrival, st.service, kind) for text in texts]


def _method(operation: str) -> str:
    name = operation.lower()
    for prefix, method in (("create", "POST"), ("post", "POST"), ("add", "POST"), ("update", "PUT"), ("put", "PUT"),
                           ("patch", "PATCH"), ("delete", "DELETE"), ("remove", "DELETE")):
        if name.startswith(prefix):
            return method
    return "GET"
