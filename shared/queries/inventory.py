"""The questions users ask of the inventory, shared by the command and the HTTP API.

Every input is validated here, and every query is built from key ranges and `Condition`s whose
values travel as query parameters: no user input is ever pasted into an OData filter."""

from __future__ import annotations

import base64
import binascii
import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain import booleans
from shared.domain.access import Scope, parse_scope
from shared.domain.audit import KNOWN_COLLECTIONS, Target, parse_target
from shared.domain.errors import InvalidQuery, PermanentEventError
from shared.domain.kinds import IN_WORKSPACE, Kind, parse_kind_name
from shared.domain.resources import WORKSPACES, ResourceRef, ServiceRef, parse_path, parse_resource_id, parse_service_id, within
from shared.domain.times import AGO_EXAMPLES, BEFORE_1601, parse_moment
from shared.queries.access import api_access, indexed_subscriptions, link_api_name, product_apis, user_access
from shared.queries.audit_history import of_target, with_callers
from shared.queries.changes import ChangesPage, feed_page, first_of, parse_by
from shared.queries.flags import flagged_rows
from shared.queries.summary import services, summarize
from shared.queries.workspaces import parse_workspace
from shared.store.audit_keys import check_keys as check_audit_keys
from shared.store.keys import (
    as_continuation,
    check_keys,
    continuation_after,
    encode_part,
    history_range,
    in_workspace_ranges,
    of_kind,
    rejected_from,
    workspace_of_row_key,
)
from shared.store.ports import Condition, Entity, InventoryRows, Query, TableReader, Token

MAX_TOP = 1000
MAX_INPUT = 1024


class NotFound(LookupError):
    """No such resource: a 404, or exit code 1."""


@dataclass(frozen=True)
class Page:
    rows: list[Entity]
    continuation: str | None


def parse_kind(text: str) -> Kind:
    kind = parse_kind_name(text)
    if kind is None:
        raise InvalidQuery(f"unknown kind {text[:60]!r}; one of: {', '.join(Kind)}")
    return kind


def parse_when(text: str | None, what: str, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 time, or a time ago (`24h`, `7d`, `90m`, `30s`, `2w`) counted back from `now` (default: the system
    clock's now); None when not given."""
    if text is None or text == "":
        return None
    _limit(text, what)
    try:
        return parse_moment(text, what, now or datetime.now(timezone.utc))
    except PermanentEventError as exc:
        if exc.reason == BEFORE_1601:
            raise InvalidQuery(f"{what} must not be before 1601-01-01, the earliest time Table Storage holds") from None
        raise InvalidQuery(f"{what} must be an ISO 8601 time such as 2026-11-02T09:00:00Z or a time ago such as "
                           f"{AGO_EXAMPLES}, not {text[:60]!r}") from None


def parse_bool(text: str | None, what: str) -> bool:
    if text is None or text == "":
        return False
    value = booleans.parse_bool(text, booleans.QUERY_TRUE, booleans.QUERY_FALSE)
    if value is None:
        raise InvalidQuery(f"{what} must be true or false")
    return value


def parse_top(text: str | None) -> int:
    if text is None or text == "":
        return 100
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_TOP:
        raise InvalidQuery(f"top must be a whole number from 1 to {MAX_TOP}")
    return int(text)


def encode_token(token: Token | None) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token, sort_keys=True).encode("utf-8")).decode("ascii")


def decode_token(text: str | None) -> Token | None:
    if not text:
        return None
    _limit(text, "continuationToken", 4 * MAX_INPUT)
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise InvalidQuery("continuationToken is not one this API issued") from None
    continuation = as_continuation(token)
    if continuation is None:
        raise InvalidQuery("continuationToken is not one this API issued")
    return continuation


def resolve_id(text: str) -> ResourceRef:
    """An ARM id, or `SERVICE/PATH` as in the Path column (`contoso/gateways/g1/apis/a1`)."""
    _limit(text, "id")
    try:
        if text.lower().startswith("/subscriptions/"):
            ref = parse_resource_id(text)[1]
        else:
            service, _, path = text.strip().partition("/")
            if not service or not path:
                raise InvalidQuery(f"id must be an ARM id or SERVICE/PATH, not {text[:80]!r}")
            ref = parse_path(ServiceRef("", "", service), path)
        check_keys(ref)  # the key limits, for both forms
        return ref
    except PermanentEventError as exc:
        raise InvalidQuery(f"bad id: {exc.message}") from None


def audit_target(text: str) -> Target | None:
    """A path the inventory has no kind for, in either form `resolve_id` takes, as the audit records name it: only
    APIM's collections (`namedValues`, `policies`, …), within Table Storage's key limits."""
    _limit(text, "id")
    if text.lower().startswith("/subscriptions/"):
        target = parse_target(text)
    else:
        service, _, path = text.strip().partition("/")
        target = parse_target(f"{ServiceRef('-', '-', service).resource_id}/{path}") if service and path else None
    if target is None or not target.path or any(c.lower() not in KNOWN_COLLECTIONS for c in target.path.split("/")[::2]):
        return None
    try:
        check_audit_keys(target)
    except PermanentEventError as exc:
        raise InvalidQuery(f"bad id: {exc.message}") from None
    return target


def history_id(text: str) -> str:
    """`history`'s id: one `resolve_id` takes, or a path only the audit records name."""
    try:
        resolve_id(text)
    except InvalidQuery:
        if audit_target(text) is None:
            raise
    return text


def service_name(text: str) -> str:
    """A service as a person names it: its name, or its ARM id (`/subscriptions/.../service/NAME`), as its name."""
    _limit(text, "service")
    if text.strip().lower().startswith("/subscriptions/"):
        try:
            return parse_service_id(text.strip()).name
        except PermanentEventError as exc:
            raise InvalidQuery(f"service: {exc.message}") from None
    if _service_key(text) is None:
        raise InvalidQuery("service is blank")
    return text.strip()


def _detail_conditions(kind: Kind, state: str | None, approval_required: bool | None) -> list[Condition]:
    """Conditions on the detail columns users filter on: a state (users, products, subscriptions), a product's approval."""
    conditions = []
    if state:
        _limit(state, "state", 64)
        if kind not in STATE_COLUMNS:
            raise InvalidQuery(f"state filters {', '.join(STATE_COLUMNS)} only")
        conditions.append(Condition(STATE_COLUMNS[kind], "eq", state.strip()))
    if approval_required is not None:
        if kind is not Kind.PRODUCT:
            raise InvalidQuery("approval-required filters products only")
        conditions.append(Condition("ApprovalRequired", "eq", approval_required))
    return conditions


def _limit(text: str, what: str, limit: int = MAX_INPUT) -> None:
    if len(text) > limit:
        raise InvalidQuery(f"{what} is longer than {limit} characters")


def _service_key(service: str | None) -> str | None:
    if service is None or service == "":
        return None
    _limit(service, "service", 256)
    try:
        encode_part(service)
    except PermanentEventError:
        raise InvalidQuery("service is not valid Unicode") from None
    if not service.strip():
        raise InvalidQuery("service is blank")
    return service.strip().lower()


STATE_COLUMNS = {Kind.USER: "UserState", Kind.PRODUCT: "ProductState", Kind.SUBSCRIPTION: "SubscriptionState"}


def resolve_of_kind(text: str, kind: Kind, what: str) -> ResourceRef:
    """An id that must name a resource of one kind (an API's revision names its API)."""
    ref = resolve_id(text)
    if ref.kind is not kind:
        raise InvalidQuery(f"{what} must be an id such as SERVICE/{kind.facts.collection}/NAME; {text[:80]!r} names a {ref.kind.value}")
    return ref


def resolve_scope(text: str) -> tuple[str, Scope]:
    """A subscription scope as an id: an API's, a product's (of the service or of a workspace), or SERVICE/apis (or
    an ARM id ending in /apis) for all APIs, SERVICE/workspaces/W/apis for all of a workspace's."""
    _limit(text, "scope")
    trimmed = text.strip().rstrip("/")
    if trimmed.lower().endswith("/apis"):
        head, workspace = trimmed[: -len("/apis")], None
        under = head.rsplit("/", 2)
        if len(under) == 3 and under[1].lower() == WORKSPACES and under[2]:
            head, workspace = under[0], under[2].lower()
        service = parse_resource_id(f"{head}/apis/x")[0] if head.lower().startswith("/subscriptions/") else ServiceRef("", "", head)
        if not service.name or "/" in service.name:
            raise InvalidQuery(f"scope must be an API's or a product's id, or SERVICE/apis; not {text[:80]!r}")
        return service.key, Scope(None, workspace=workspace)
    ref = resolve_id(trimmed)
    scope = parse_scope(ref.path)
    if ref.kind not in (Kind.API, Kind.PRODUCT) or scope is None:
        raise InvalidQuery(f"scope must be an API's or a product's id, or SERVICE/apis; not {text[:80]!r}")
    return ref.service.key, scope


def in_workspace_of(ref: ResourceRef, workspace: str | None) -> ResourceRef:
    """The resource an id names, placed in `workspace` (None: as the id says; "": the service's) when the id names
    none; an InvalidQuery when the id names another."""
    if workspace is None or (ref.workspace or "").lower() == workspace:
        return ref
    if ref.workspace is not None:
        where = f"workspace {workspace!r}" if workspace else "the service"
        raise InvalidQuery(f"{ref.path[:100]!r} is in workspace {ref.workspace[:80]!r}, not in {where}")
    try:
        return parse_path(ref.service, within(workspace, ref.path))
    except PermanentEventError as exc:
        raise InvalidQuery(f"bad id: {exc.message}") from None


def _linked_name(link: Entity, column: str) -> str:
    """The name of what a product's link row stands for: the last segment of its Linked… ARM id (a workspace
    product's link), else its own name."""
    linked = link.get(column)
    return linked.rstrip("/").rsplit("/", 1)[-1].lower() if isinstance(linked, str) and linked.strip("/") else str(link.get("Name", "")).lower()


def _key_order(row: Entity) -> tuple[str, str]:
    return str(row["RowKey"]), str(row["PartitionKey"])


def _page_of(rows: list[Entity], top: int | None, after: Token | None) -> Page:
    """One page of rows in key order (`_key_order`): those after the token's keys, `top` of them at most."""
    if after is not None:
        start = (after["RowKey"], after["PartitionKey"])
        rows = [r for r in rows if _key_order(r) > start]
    if top is None or len(rows) <= top:
        return Page(rows, None)
    last = rows[top - 1]
    return Page(rows[:top], encode_token(continuation_after(last)))


def _partition_of(query: Query) -> str:
    return next(str(c.value) for c in query.conditions if c.column == "PartitionKey" and c.op == "eq")


def _ranges_page(reader: TableReader, queries: list[Query], top: int | None, after: Token | None) -> Page:
    """One page of the rows of key ranges read in order (each one partition's, in PartitionKey order): those after the
    token's keys, `top` at most; each range is read only while the page wants rows, and one row past the page tells
    whether there is a next one."""
    rows: list[Entity] = []
    for partition, query in sorted(((_partition_of(q), q) for q in queries), key=lambda item: item[0]):
        low = query.low_rk
        if after is not None:
            if partition < after["PartitionKey"]:
                continue
            if partition == after["PartitionKey"]:
                low = max(low or "", after["RowKey"] + " ")  # no key holds a character below a space
        if query.high_rk is not None and low is not None and low >= query.high_rk:
            continue
        rows += first_of(reader, replace(query, low_rk=low), None if top is None else top + 1 - len(rows))
        if top is not None and len(rows) > top:
            break
    if top is None or len(rows) <= top:
        return Page(rows, None)
    return Page(rows[:top], encode_token(continuation_after(rows[top - 1])))


class InventoryQueries:
    def __init__(self, rows: InventoryRows, reader: TableReader, clock: Callable[[], datetime], *,
                 audit_window: timedelta = timedelta(minutes=5)) -> None:
        self._rows = rows
        self._reader = reader
        self.clock = clock
        self.audit_window = audit_window  # AUDIT_JOIN_WINDOW_MINUTES

    def known_service(self, text: str) -> str:
        """The name of a service the inventory has seen (a status row: it sent an event or was synced), given its name
        (any case) or ARM id; NotFound naming the services it knows, the closest first, for any other."""
        name = service_name(text)
        known = dict(services(self._reader))
        if name.lower() in known:
            return known[name.lower()]
        close = difflib.get_close_matches(name.lower(), list(known), n=3)
        hint = f"did you mean {' or '.join(repr(known[key]) for key in close)}? " if close else ""
        names = sorted(known.values(), key=str.lower)
        listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        raise NotFound(f"the inventory has never seen service {name[:100]!r}: {hint}"
                       + (f"it knows {listed}" if names else "it knows no service yet (replay events or run a sync first)"))

    def list_kind(self, kind: Kind, *, service: str | None = None, include_deleted: bool = False,
             deleted_since: datetime | None = None, changed_since: datetime | None = None,
             top: int | None = 100, continuation: str | None = None, owner: str | None = None, scope: str | None = None,
             state: str | None = None, approval_required: bool | None = None, workspace: str | None = None) -> Page:
        """Rows of one kind: one family's key range (in one service, or in all), filtered on Kind and the details
        asked for; a subscription's `owner` (a user's id) or `scope` reads the access index instead, one page. With
        `workspace` (a name, or "-" for the service-level rows only), the workspace's RowKey range in each of the
        family's partitions of the service (of every known service when none is given): `in_workspace_ranges`."""
        wanted = parse_workspace(workspace)
        conditions: list[Condition] = [*_detail_conditions(kind, state, approval_required)]
        if deleted_since is not None:
            conditions += [Condition("IsDeleted", "eq", True), Condition("DeletedAt", "ge", deleted_since)]
        elif not include_deleted:
            conditions.append(Condition("IsDeleted", "eq", False))
        if changed_since is not None:
            conditions.append(Condition("LastEventTime", "ge", changed_since))
        if wanted and kind not in IN_WORKSPACE and kind is not Kind.WORKSPACE:
            raise InvalidQuery(f"a workspace holds no {kind.value}: workspace filters {', '.join(sorted(IN_WORKSPACE | {Kind.WORKSPACE}))}")
        if owner or scope:
            rows = self._indexed(kind, service, owner, scope, conditions, include_deleted or deleted_since is not None)
            if wanted is not None:
                rows = [row for row in rows if workspace_of_row_key(str(row["RowKey"])) == wanted]
            return _page_of(rows, top, decode_token(continuation))
        if wanted is not None and (kind in IN_WORKSPACE or kind is Kind.WORKSPACE):
            keys = [key] if (key := _service_key(service)) is not None else sorted(k for k, _ in services(self._reader))
            ranges = [q for k in keys for q in in_workspace_ranges(kind, k, wanted, tuple(conditions))]
            return _ranges_page(self._reader, ranges, top, decode_token(continuation))
        rows, token = self._reader.page(of_kind(kind, _service_key(service), tuple(conditions)), top, decode_token(continuation))
        return Page(rows, encode_token(token))

    def resource(self, ident: str) -> Entity:
        """One row; a product's with its APIs and groups (their names, as last read)."""
        ref = resolve_id(ident)
        row, _ = self._rows.load(ref, fresh=True)
        if row is None:
            raise NotFound(f"no resource {ident[:200]!r} in the inventory{self._workspace_hint(ref)}")
        if ref.kind is Kind.PRODUCT:
            apis = sorted(link_api_name(r) for r in product_apis(self._reader, ref, Kind.PRODUCT_API))
            groups = sorted(_linked_name(r, "LinkedGroupId") for r in product_apis(self._reader, ref, Kind.PRODUCT_GROUP))
            return {**row.entity, "Apis": ",".join(apis), "Groups": ",".join(groups)}
        return row.entity

    def _workspace_hint(self, ref: ResourceRef) -> str:
        """For a resource in a workspace the inventory has no row of: the workspaces of the service it knows, the
        closest first (their family's range in one service: as many rows as workspaces)."""
        if ref.workspace is None:
            return ""
        rows, _ = self._reader.page(of_kind(Kind.WORKSPACE, ref.service.key, (Condition("IsDeleted", "eq", False),)), None)
        known = {str(r["Name"]).lower(): str(r["Name"]) for r in rows}
        if ref.workspace.lower() in known:
            return ""
        close = difflib.get_close_matches(ref.workspace.lower(), list(known), n=3)
        hint = f"did you mean {' or '.join(repr(known[key]) for key in close)}? " if close else ""
        names = ", ".join(sorted(known.values(), key=str.lower)[:20]) or "none"
        return f": service {ref.service.name[:100]!r} has no workspace {ref.workspace[:80]!r} in it; {hint}its workspaces: {names}"

    def access_to_api(self, ident: str, workspace: str | None = None) -> dict[str, Any]:
        """Every subscription that can call the API, and why (`shared.queries.access`). `workspace` names the API's
        workspace when the id does not (`contoso/apis/a` with workspace w is `contoso/workspaces/w/apis/a`); "-" says
        the API is the service's."""
        ref = in_workspace_of(resolve_of_kind(ident, Kind.API, Kind.API.value), parse_workspace(workspace))
        found = api_access(self._reader, ref)
        if found is None:
            raise NotFound(f"no live API {ref.service.name[:100]}/{ref.path[:200]} in the inventory{self._workspace_hint(ref)}")
        return found

    def access_of_user(self, ident: str, workspace: str | None = None) -> dict[str, Any]:
        """What a user's subscriptions give access to (`shared.queries.access`); those of one workspace (or, with "-",
        the service-level ones) when `workspace` is given."""
        found = user_access(self._reader, resolve_of_kind(ident, Kind.USER, Kind.USER.value), parse_workspace(workspace))
        if found is None:
            raise NotFound(f"no user {ident[:200]!r} and no subscription of theirs in the inventory")
        return found

    def _indexed(self, kind: Kind, service: str | None, owner: str | None, scope: str | None, conditions: list[Condition],
                 include_deleted: bool) -> list[Entity]:
        """In key order (a service's subscriptions: by lower-cased name), so that a page's last keys continue it."""
        if kind is not Kind.SUBSCRIPTION:
            raise InvalidQuery("owner and scope filter subscriptions only")
        if include_deleted:
            raise InvalidQuery("owner and scope list live subscriptions only")
        user = resolve_of_kind(owner, Kind.USER, "owner") if owner else None
        service_key, wanted = resolve_scope(scope) if scope else (user.service.key if user else "", None)
        if user is not None and user.service.key != service_key:
            raise InvalidQuery("owner and scope name different services")
        if service and (name := service_name(service)).lower() != service_key:
            what = "owner" if owner else "scope"
            raise InvalidQuery(f"service {name[:100]!r} is not the {what}'s service ({service_key[:100]!r}): leave the service out, "
                               f"or give {'an' if owner else 'a'} {what} in {name[:100]!r}")
        rows = indexed_subscriptions(self._reader, service_key, user.name.lower() if user else None, wanted)
        return sorted((r for r in rows if all(c.holds(r) for c in conditions)), key=_key_order)

    def history(self, ident: str, since: datetime | None = None, with_children: bool = False) -> list[Entity]:
        """One resource's history (with its children's, for a top-level resource), newest first: one key range in the
        resource's partition, joined with its audit records (another key range beside it) so each event names who made
        it (`shared.queries.audit_history`). Tombstoned resources keep theirs. A path the inventory has no kind for
        (`contoso/namedValues/n`) gives its audit records."""
        try:
            ref = resolve_id(ident)
        except InvalidQuery:
            target = audit_target(ident)
            if target is None:
                raise
            entries = of_target(self._reader, target, since, self.audit_window)
            if not entries:
                raise NotFound(f"no audit record of {ident[:200]}") from None
            return entries
        query = history_range(ref, with_children)
        if since is not None:  # events from a window before `since` too, as the audit records: an event just before
            # it is joined with its record just after, and both left out by the filter, not the record shown alone
            query = replace(query, conditions=(*query.conditions, Condition("EventTime", "ge", since - self.audit_window)))
        records, _ = self._reader.page(query, None)
        entries = with_callers(self._reader, ref, records, since, with_children, self.audit_window)
        if not entries:
            self.resource(ident)  # NotFound when the resource is unknown too
        return entries

    def changes(self, *, since: datetime | None, until: datetime | None = None, service: str | None = None,
                kind: Kind | None = None, by: str = "event", top: int = 100, continuation: str | None = None,
                workspace: str | None = None) -> ChangesPage:
        """One page of the change feed, newest first, merged across services (`shared.queries.changes`); of one
        workspace's resources (or, with "-", the service-level ones) when `workspace` is given."""
        if since is None:
            raise InvalidQuery("since is required")
        until = until or self.clock() + timedelta(microseconds=1)  # by default up to now, now included
        return feed_page(self._reader, since=since, until=until, service_key=_service_key(service), kind=kind,
                         by=parse_by(by), top=top, continuation=continuation, workspace=parse_workspace(workspace),
                         audit_window=self.audit_window)

    def flags(self) -> dict[str, list[Entity]]:
        """Tokens near expiry or expired, breakers open or stuck open; live rows only, read through the count rows'
        lists of flagged rows (`shared.queries.flags`)."""
        return flagged_rows(self._reader)

    def rejected(self, since: datetime | None = None) -> list[Entity]:
        conditions = (Condition("ReceivedAt", "ge", since),) if since else ()
        rows, _ = self._reader.page(rejected_from(since or datetime(2000, 1, 1), None, conditions), None)
        return sorted(rows, key=lambda r: r["ReceivedAt"], reverse=True)

    def summary(self, workspace: str | None = None) -> dict[str, Any]:
        """Counts by kind and service (and workspace), and the events applied, stale, duplicate and rejected in the last
        hour and day, from the count rows (`shared.queries.summary`); one workspace's counts (or, with "-", the
        service level's) when `workspace` is given."""
        return summarize(self._reader, self.clock(), parse_workspace(workspace))
