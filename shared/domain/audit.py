"""The rules of the Activity Log's records of APIM (docs/design.md, "The Activity Log: the path of an audit record"):
what a record must hold, which operations are kept (MICROSOFT.APIMANAGEMENT/… only, compared without regard to
case), where a record's resource is in the inventory, who the caller was, and how the Start and Success/Failure
records of one operation fold into one audit record. Pure: the reader of the archive, the backfill and the store
live elsewhere.

The input form is the exported record (one JSON line of `insights-activity-logs`); the backfill turns the REST API's
`EventData` into the same shape. Exported records have no `caller`: the caller comes from `identity.claims`."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from shared.domain.errors import PermanentEventError
from shared.domain.kinds import FACTS, Kind
from shared.domain.resources import ResourceRef, ServiceRef, parse_path, parse_service_id
from shared.domain.times import parse_time

PROVIDER: Final = "microsoft.apimanagement/"
_SERVICE_MARK: Final = "/providers/microsoft.apimanagement/service/"

# Why a record is not kept (each recorded with the blob and byte offset, or the backfill's page: `audit rejected`).
NOT_JSON, NOT_AN_OBJECT, NO_TIME, NO_RESOURCE_ID, NO_OPERATION = "not-json", "not-an-object", "no-time", "no-resource-id", "no-operation"
NO_RESULT, NOT_APIM_RESOURCE, NO_CORRELATION, TOO_LONG = "no-result", "not-apim-resource", "no-correlation-id", "too-long"
BAD_RECORD_REASONS: Final = (NOT_JSON, NOT_AN_OBJECT, NO_TIME, NO_RESOURCE_ID, NO_OPERATION, NO_RESULT, NOT_APIM_RESOURCE,
                             NO_CORRELATION, TOO_LONG)

# Results and operations as the audit rows and the JSON keep them.
STARTED, SUCCEEDED, FAILED = "started", "succeeded", "failed"
WRITE, DELETE = "write", "delete"
_RESULTS: Final = {"start": STARTED, "started": STARTED, "accept": STARTED, "accepted": STARTED,
                   "success": SUCCEEDED, "succeeded": SUCCEEDED, "failure": FAILED, "failed": FAILED}
REGENERATE_PRIMARY, REGENERATE_SECONDARY = "regeneratePrimaryKey", "regenerateSecondaryKey"
# Action names spelt as APIM's REST reference spells them (the log may write them upper case).
_ACTIONS: Final = {a.lower(): a for a in (REGENERATE_PRIMARY, REGENERATE_SECONDARY, "listSecrets", "listValue", "refreshSecret",
                                           "listKeys", "regenerateKey", "backup", "restore", "applyNetworkConfigurationUpdates",
                                           "deploy", "save", "validate", "syncState", "generateSsoUrl", "listDelegationSettingSecrets")}

# Collections as APIM's REST reference spells them: the inventory's, and those it keeps no rows of.
_COLLECTIONS: Final = {c.lower(): c for c in (*(f.collection for f in FACTS.values()), *(f.in_workspace for f in FACTS.values() if f.in_workspace),
                                               "namedValues", "policies", "certificates", "loggers", "diagnostics", "policyFragments",
                                               "tags", "apiVersionSets", "authorizationServers", "identityProviders", "operations", "schemas",
                                               "openidConnectProviders", "portalsettings", "templates", "notifications", "contentTypes",
                                               "portalRevisions", "authorizationProviders", "documentations", "tagDescriptions",
                                               "issues", "wikis", "caches", "groups", "releases", "apiLinks", "groupLinks")}

KNOWN_COLLECTIONS: Final = frozenset(_COLLECTIONS)  # lower case


# Caller kinds, and the claims they come from.
USER, SERVICE_PRINCIPAL, MANAGED_IDENTITY, UNKNOWN = "user", "servicePrincipal", "managedIdentity", "unknown"
CALLER_KINDS: Final = (USER, SERVICE_PRINCIPAL, MANAGED_IDENTITY, UNKNOWN)
UPN_CLAIM: Final = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
OBJECT_ID_CLAIM: Final = "http://schemas.microsoft.com/identity/claims/objectidentifier"
NAME_CLAIM, APP_ID_CLAIM = "name", "appid"
# A managed identity's token carries `xms_mirid` (the identity's ARM resource id), which an app registration's token
# never does; `idtyp` ("app" or "user") is an optional claim of access tokens; the Activity Log's
# `authorization.evidence.principalType` says User, ServicePrincipal or ManagedIdentity where it is present.
MI_CLAIM, TYPE_CLAIM = "xms_mirid", "idtyp"


@dataclass(frozen=True)
class Caller:
    kind: str = UNKNOWN
    name: str = ""
    upn: str = ""
    app_id: str = ""
    object_id: str = ""

    def merged(self, other: Caller) -> Caller:
        """Either record's caller, field by field (the larger value when both name one): order never matters."""
        rank = min(CALLER_KINDS.index(self.kind), CALLER_KINDS.index(other.kind))  # a known kind wins over unknown
        return Caller(CALLER_KINDS[rank], *(max(a, b) for a, b in zip(self.fields[1:], other.fields[1:], strict=True)))

    @property
    def fields(self) -> tuple[str, str, str, str, str]:
        return self.kind, self.name, self.upn, self.app_id, self.object_id

    def ids_only(self) -> Caller:
        """What AUDIT_CALLER_DETAILS=object-id keeps: the kind and the ids, no name or UPN (personal data)."""
        return replace(self, name="", upn="")


@dataclass(frozen=True)
class Target:
    """Where a record's resource is: its service and path (original case; "" for the service itself), and the
    inventory resource it belongs to (`anchor`: itself when the inventory has its kind, else the nearest resource above
    it, such as an API for its policy; None for what has no inventory kind above it, such as a named value)."""

    service: ServiceRef
    path: str
    anchor: ResourceRef | None

    @property
    def resource_id(self) -> str:
        return f"{self.service.resource_id}/{self.path}" if self.path else self.service.resource_id

    @property
    def collection(self) -> str:
        """The first collection of the path, lower case ("" for the service): names a partition when there is no anchor."""
        return self.path.split("/", 1)[0].lower() if self.path else ""

    @property
    def kind(self) -> str:
        """The inventory kind when the path is itself an inventory resource, else the path's last collection (`policies`)."""
        if self.anchor is not None and self.anchor.path.lower() == self.path.lower():
            return self.anchor.kind.value
        parts = self.path.split("/")
        return parts[-2] if len(parts) >= 2 else "service"


@dataclass(frozen=True)
class AuditRecord:
    """One operation on one resource: the fold of its Start and Success/Failure records (same resourceId,
    operationName and correlationId)."""

    target: Target
    operation_name: str  # upper case, as the natural key compares it
    operation: str  # write, delete or an action name
    correlation_id: str
    result: str
    started_at: datetime | None
    completed_at: datetime | None
    caller: Caller
    client_ip: str = ""
    status_code: str = ""

    @property
    def time(self) -> datetime:
        """When it happened: its completion, or its start while no completion is known."""
        moment = self.completed_at or self.started_at
        assert moment is not None  # a record holds one or the other
        return moment

    @property
    def natural_key(self) -> tuple[str, str, str]:
        return self.target.resource_id.lower(), self.operation_name.lower(), self.correlation_id.lower()

    def merged(self, other: AuditRecord) -> AuditRecord:
        """The fold of two records of one operation: commutative and associative, so arrival order never matters. The
        earliest start; the latest completion with its result and status (at one instant, `failed` before `succeeded`)."""
        if self.natural_key != other.natural_key:
            raise ValueError("only records of one operation fold")
        starts = [t for t in (self.started_at, other.started_at) if t is not None]
        ends = [(r.completed_at, r.result, r.status_code) for r in (self, other) if r.completed_at is not None]
        end = max(ends, key=lambda e: (e[0], e[1] == FAILED, e[2])) if ends else None
        status = end[2] if end else max(self.status_code, other.status_code)
        # the same key spelt in other case: one spelling, whichever record comes first
        first = min((self, other), key=lambda r: (r.target.path, r.operation_name, r.correlation_id))
        return AuditRecord(first.target, first.operation_name, first.operation, first.correlation_id, end[1] if end else STARTED,
                           min(starts) if starts else None, end[0] if end else None, self.caller.merged(other.caller),
                           max(self.client_ip, other.client_ip), status)


@dataclass(frozen=True)
class BadRecord:
    reason: str
    message: str


@dataclass(frozen=True)
class Ignored:
    """A record of another resource provider: the archive holds every operation of the subscription."""

    operation_name: str


def read_line(line: bytes) -> list[AuditRecord | BadRecord | Ignored]:
    """One archive line: a record, or the `{"records": [...]}` wrapping Event Hubs (and archives before 2018) use."""
    return [read for read, _ in read_line_records(line)]


def read_line_records(line: bytes) -> list[tuple[AuditRecord | BadRecord | Ignored, object]]:
    """The same, each with what it was read from: the line, or its record of a wrapped line (a bad one's excerpt)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return [(BadRecord(NOT_JSON, str(exc)[:200]), line)]
    if isinstance(record, dict) and isinstance(record.get("records"), list) and "time" not in record:
        return [(read_record(one), one) for one in record["records"]]
    return [(read_record(record), line)]


def read_record(record: object) -> AuditRecord | BadRecord | Ignored:
    if not isinstance(record, dict):
        return BadRecord(NOT_AN_OBJECT, f"a record must be a JSON object, not {type(record).__name__}")
    operation_name = record.get("operationName")
    if isinstance(operation_name, dict):  # the REST API's {value, localizedValue}, should a caller hand it over as is
        operation_name = operation_name.get("value")
    if not isinstance(operation_name, str) or not operation_name.strip():
        return BadRecord(NO_OPERATION, "the record has no operationName")
    if not operation_name.strip().lower().startswith(PROVIDER):
        return Ignored(operation_name.strip())
    try:
        moment = parse_time(record.get("time"), "time")
    except PermanentEventError as exc:
        return BadRecord(NO_TIME, exc.message)
    resource_id = record.get("resourceId")
    if not isinstance(resource_id, str) or not resource_id.strip():
        return BadRecord(NO_RESOURCE_ID, "the record has no resourceId")
    target = parse_target(resource_id)
    if target is None:
        return BadRecord(NOT_APIM_RESOURCE, f"resourceId is not an APIM service or resource: {resource_id[:300]!r}")
    result = _RESULTS.get(str(record.get("resultType") or "").strip().lower())
    if result is None:
        return BadRecord(NO_RESULT, f"resultType must be Start, Success or Failure, not {str(record.get('resultType'))[:60]!r}")
    correlation = record.get("correlationId")
    if not isinstance(correlation, str) or not correlation.strip():
        return BadRecord(NO_CORRELATION, "the record has no correlationId")
    identity = _object(record.get("identity"))
    name = operation_name.strip().upper()
    done = result != STARTED
    return AuditRecord(target, name, operation_of(name), correlation.strip(), result, None if done else moment, moment if done else None,
                       caller_of(identity, record.get("caller")), _text(record.get("callerIpAddress")), _status(record.get("properties")))


def operation_of(operation_name: str) -> str:
    """`…/APIS/WRITE` → write, `…/DELETE` → delete, `…/SUBSCRIPTIONS/REGENERATEPRIMARYKEY/ACTION` → regeneratePrimaryKey."""
    parts = operation_name.strip().strip("/").split("/")
    last = parts[-1].lower()
    if last in (WRITE, DELETE):
        return last
    if last == "action" and len(parts) >= 2:
        return _ACTIONS.get(parts[-2].lower(), parts[-2].lower())
    return last


def parse_target(resource_id: str) -> Target | None:
    """The service and path of an APIM resource id (any case); the anchor is the deepest inventory resource along the
    path: `apis/a/policies/policy` → API a, `workspaces/w/namedValues/n` → workspace w, `namedValues/n` → None."""
    text = resource_id.strip().rstrip("/")
    at = text.lower().find(_SERVICE_MARK)
    if at < 0:
        return None
    head, rest = text[:at + len(_SERVICE_MARK)], text[at + len(_SERVICE_MARK):]
    name, _, path = rest.partition("/")
    try:
        service = parse_service_id(head + name)
    except PermanentEventError:
        return None
    parts = [p for p in path.split("/") if p]
    if len(parts) % 2:  # a collection without a name is no resource
        return None
    # The archive writes ids in upper case, the REST API as created: one spelling for both (APIM's names ignore case).
    parts = [_COLLECTIONS.get(p.lower(), p.lower()) if n % 2 == 0 else p.lower() for n, p in enumerate(parts)]
    return Target(service, "/".join(parts), _anchor(service, parts))


def _anchor(service: ServiceRef, parts: list[str]) -> ResourceRef | None:
    for end in range(len(parts), 0, -2):
        try:
            return parse_path(service, "/".join(parts[:end]))
        except PermanentEventError:
            continue
    return None


def caller_of(identity: dict[str, Any], caller: object = None) -> Caller:
    """Who made the call, from `identity.claims` (and `identity.authorization.evidence`), with the REST API's `caller`
    (a UPN or an app id) as the name when no claim gives one."""
    claims = _object(identity.get("claims"))
    evidence = _object(_object(identity.get("authorization")).get("evidence"))
    upn, name, app_id = _text(claims.get(UPN_CLAIM)), _text(claims.get(NAME_CLAIM)), _text(claims.get(APP_ID_CLAIM))
    object_id = _text(claims.get(OBJECT_ID_CLAIM)) or _text(claims.get("oid"))
    principal_type = _text(evidence.get("principalType")).lower()
    token_type = _text(claims.get(TYPE_CLAIM)).lower()
    if upn or principal_type == "user" or token_type == "user":
        kind = USER
    elif claims.get(MI_CLAIM) or principal_type == "managedidentity":
        kind = MANAGED_IDENTITY
    elif app_id or principal_type == "serviceprincipal" or token_type == "app":
        kind = SERVICE_PRINCIPAL
    else:
        kind = UNKNOWN
    given = _text(caller)
    if not name and given and given != app_id and given != object_id:
        name = given
    if kind is USER and not upn and "@" in given:
        upn = given
    return Caller(kind, name, upn, app_id, object_id)


def key_regenerations(record: AuditRecord) -> tuple[str, datetime] | None:
    """A succeeded key regeneration of a subscription: which column it sets (its maximum) and when; else None."""
    ref = record.target.anchor
    if record.result != SUCCEEDED or record.completed_at is None or ref is None or ref.kind is not Kind.SUBSCRIPTION \
            or ref.path.lower() != record.target.path.lower():
        return None
    column = {REGENERATE_PRIMARY: "PrimaryKeyRegeneratedAt", REGENERATE_SECONDARY: "SecondaryKeyRegeneratedAt"}.get(record.operation)
    return (column, record.completed_at) if column else None


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value.strip()[:1024] if isinstance(value, str) else ""


def _status(properties: object) -> str:
    if not isinstance(properties, dict):
        return ""
    code = properties.get("statusCode")
    return str(code)[:60] if isinstance(code, str | int) and not isinstance(code, bool) else ""
