"""apim-inventory: the inventory from a shell. Query it, replay events into it, run the timers now."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from azure.core.exceptions import AzureError, HttpResponseError

from shared import bootstrap
from shared.config import Settings
from shared.domain.errors import ConflictRetriesExhausted, InvalidArgument, InvalidQuery, InvalidSettings, PermanentEventError, one_line
from shared.domain.kinds import Kind
from shared.domain.outcomes import Outcome, SyncOutcome, SyncStop
from shared.domain.resources import ServiceRef, parse_service_id
from shared.entrypoints import cli_expiry
from shared.entrypoints.output import progress, record_lines, row_table, row_value, table, to_csv, to_json, when
from shared.ingest import dead_letter
from shared.ingest.replay import UNDECODABLE, Undecodable, apply, outcome_text
from shared.integrations import blobs
from shared.integrations.delivery import read_events
from shared.integrations.storage import StorageNotConfigured
from shared.logs import summary_line
from shared.migration.layout import Migration
from shared.queries.changes import TIME_COLUMN
from shared.queries.inventory import MAX_TOP, InventoryQueries, NotFound, parse_kind, parse_top, parse_when, resolve_id
from shared.queries.summary import NotMigrated
from shared.store.ports import Entity

PROG = "apim-inventory"
RETRY_TOTAL = 1  # an unreachable store fails in a second, unless INVENTORY_STORAGE_RETRY_TOTAL says otherwise
PROGRESS_ABOVE = 200
EPILOG = f"""\
The store comes from the same app settings as the function app (docs/settings.md): INVENTORY_STORAGE, INVENTORY_STORAGE__tableServiceUri,
AzureWebJobsStorage, INVENTORY_TABLE and the other table names. When the current directory has a local.settings.json, its "Values" are
used for every setting not already in the environment. INVENTORY_STORAGE_RETRY_TOTAL defaults to {RETRY_TOTAL} here, to fail fast.

Times (T) are ISO 8601, such as 2026-11-02T09:00:00Z, or a time ago: 30s, 90m, 24h, 7d, 2w (before --now, if given).
An ID is an ARM id, or SERVICE/PATH as in the Path column (contoso/apis/orders;rev=2, contoso/gateways/edge/instances/pod-1).

Exit codes: 0 success; 1 not found, or the store unreachable or failing; 2 usage errors (unknown kind, bad id, bad time, unreadable input)."""
EXTRA_COLUMNS = {Kind.API: ("Revision",), Kind.GATEWAY_INSTANCE: ("TokenStatus", "TokenExpiresAt"),
                 Kind.CIRCUIT_BREAKER_RULE: ("BreakerState", "ExpectedCloseAt", "StuckOpen")}
# Details from ARM worth a column, shown when some listed row has them (ENRICH_FROM_ARM or a sync).
DETAIL_COLUMNS = {Kind.USER: ("Email", "UserState"), Kind.API: ("DisplayName", "ApiPath", "IsCurrent"),
                  Kind.PRODUCT: ("DisplayName", "ProductState", "ApprovalRequired"),
                  Kind.SUBSCRIPTION: ("DisplayName", "SubscriptionState", "ExpirationDate"),
                  Kind.GATEWAY: ("LocationCity",), Kind.BACKEND: ("Url",), Kind.CIRCUIT_BREAKER_RULE: ("ConfiguredTripDuration",)}
STORE_ERRORS = (AzureError, ConflictRetriesExhausted)


class Failure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {_line(message)} (see {self.prog} --help)\n")


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """Validate an argument with the query layer's own parser, before anything connects."""
    def check(text: str) -> str:
        try:
            parse(text)
        except InvalidQuery as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return check


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the pipeline does, on stderr")
    parser.add_argument("--now", metavar="T", type=_checked(lambda t: parse_when(t, "--now")),
                        help="take T as the current time (summary windows, sweeps, replay): for events from the past")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = _Parser(add_help=False)
    output.add_argument("-o", "--output", choices=("table", "json", "csv"), default="table", help="default: table")

    def command(name: str, text: str, run: Callable[[argparse.Namespace], int], reads: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text, parents=[output] if reads else [])
        sub.set_defaults(run=run)
        return sub

    def since(sub: argparse.ArgumentParser, flag: str, text: str, required: bool = False) -> None:
        sub.add_argument(flag, metavar="T", type=_checked(lambda t: parse_when(t, flag)), help=text, required=required)

    sub = command("list", "the rows of one kind (live ones, unless told otherwise)", _list)
    sub.add_argument("kind", metavar="KIND", type=_checked(parse_kind), help=f"one of: {', '.join(Kind)}")
    sub.add_argument("--service", metavar="S", help="one APIM service (default: all)")
    sub.add_argument("--include-deleted", action="store_true", help="tombstones too")
    since(sub, "--deleted-since", "only tombstones deleted at or after T")
    since(sub, "--changed-since", "only rows whose last event is at or after T")
    command("show", "one resource, every column", _show).add_argument("id", metavar="ID", type=_checked(resolve_id))
    sub = command("history", "a resource's history, newest first", _history)
    sub.add_argument("id", metavar="ID", type=_checked(resolve_id))
    since(sub, "--since", "only events at or after T")
    sub.add_argument("--with-children", action="store_true", help="with the history of its children (an API's revisions and "
                     "releases, a gateway's API links, hostname configurations, certificate authorities and instances)")
    sub = command("changes", "every change across the inventory in a window, newest first", _changes)
    since(sub, "--since", "changes at or after T", required=True)
    since(sub, "--until", "changes before T (default: now, included)")
    sub.add_argument("--service", metavar="S", help="one APIM service (default: all)")
    sub.add_argument("--kind", metavar="KIND", type=_checked(parse_kind), help="only resources of one kind")
    sub.add_argument("--by", choices=tuple(TIME_COLUMN), default="event",
                     help="order and filter by the time of the event in APIM (default), or by when it was recorded here")
    sub.add_argument("--top", metavar="N", type=_checked(parse_top), help="one page of N (default: every change in the window)")
    sub.add_argument("--continuation", metavar="TOKEN", help="the page after the one that printed TOKEN")
    command("flags", "gateway tokens near expiry or expired, circuit breakers open or stuck open", _flags)
    command("summary", "counts by kind and service; events applied, stale, duplicate, rejected in the last hour and day", _summary)
    since(command("rejected", "the rejected events, with their reasons, newest first", _rejected), "--since", "only those received at or after T")
    sub = command("replay", "apply events from files, or Event Grid's dead letters, through the function's pipeline, with its outcomes",
                  _replay, reads=False)
    sub.add_argument("files", nargs="*", metavar="FILE", help="a JSON array as Event Grid delivers it, or JSON Lines; - for stdin")
    sub.add_argument("--dead-letter", metavar="URL", help="replay the dead-letter blobs of a container: ACCOUNT_URL/CONTAINER, or "
                     f"CONTAINER when {blobs.SETTING} names the account; each blob's outcomes are printed")
    sub.add_argument("--connection-string", metavar="CS", help=f"for --dead-letter: the account's connection string "
                     f"(default: the {blobs.SETTING} setting; UseDevelopmentStorage=true for Azurite); else https URLs "
                     "use DefaultAzureCredential")
    sub.add_argument("--prefix", metavar="P", help="for --dead-letter: only blobs whose name starts with P (a topic's blobs)")
    since(sub, "--since", "for --dead-letter: only blobs last modified (dead-lettered) at or after T")
    sub.add_argument("--delete-after", action="store_true", help="for --dead-letter: delete each blob once every event in it "
                     "has an outcome (applied, duplicate, stale or rejected); others are kept")
    sub = command("purge", "delete what retention no longer keeps: old tombstones, history, rejected events and sent alerts", _purge)
    sub.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    sub.add_argument("--now", metavar="T", default=argparse.SUPPRESS, type=_checked(lambda t: parse_when(t, "--now")),
                     help="take T as the current time for the cutoffs")
    command("migrate", "move the store to the current layout (history beside its rows, count rows, the change feed); "
            "idempotent: a rerun resumes where a run stopped", _migrate, reads=False)
    sub = command("sync", "a full sync of one APIM service from Azure Resource Manager: add, update, tombstone; resumes a "
                  "sync in progress (invocations of SYNC_TIME_BUDGET_SECONDS each, until it is done)", _sync)
    sub.add_argument("--service", required=True, metavar="ID", type=_service_id,
                     help="the service's ARM id, /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME")
    sub.add_argument("--once", action="store_true", help="one invocation within the budget, as the reconcile timer runs it")
    cli_expiry.register(cli_expiry.Lent(command, since, _services, _emit))  # expiring, alerts, sweep
    return parser


def _service_id(text: str) -> ServiceRef:
    try:
        return parse_service_id(text)
    except PermanentEventError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def main(argv: Sequence[str] | None = None) -> int:
    verbose = False
    try:
        args = _parser().parse_args(argv)
        verbose = args.verbose
        logging.basicConfig(level=logging.WARNING if verbose else logging.ERROR, format=f"{PROG}: %(name)s: %(message)s")
        logging.getLogger("apim_inventory").setLevel(logging.INFO if verbose else logging.ERROR)
        _load_local_settings(Path("local.settings.json"))
        return int(args.run(args))
    except SystemExit as exc:  # argparse: --help, or a usage error it has printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except (Failure, InvalidQuery, InvalidArgument, NotFound, NotMigrated, *STORE_ERRORS) as exc:
        code = exc.code if isinstance(exc, Failure) else 2 if isinstance(exc, InvalidQuery | InvalidArgument) else 1
        return _fail(_store_error(exc) if isinstance(exc, STORE_ERRORS) else str(exc), code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return 1
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        return _fail(f"unexpected {type(exc).__name__}: {exc}", 1)


def _line(text: str) -> str:
    return " ".join(text.splitlines()).strip()


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {_line(message)}", file=sys.stderr)
    return code


def _store_error(exc: Exception) -> str:
    message = one_line(exc)
    if isinstance(exc, HttpResponseError):
        return f"the inventory store failed: {exc.status_code} {exc.reason}: {message}"
    return f"the inventory store is unreachable: {message}" if isinstance(exc, AzureError) else f"the inventory store failed: {message}"


def _load_local_settings(path: Path) -> None:
    if not path.is_file():
        return
    try:
        for key, value in (json.loads(path.read_text(encoding="utf-8")).get("Values") or {}).items():
            if value is not None:
                os.environ.setdefault(str(key), str(value))
    except (OSError, ValueError, AttributeError) as exc:
        raise Failure(1, f"{path}: cannot use its Values: {exc}") from None


def _services(args: argparse.Namespace, with_arm: bool = False) -> bootstrap.Services:
    moment = parse_when(args.now, "--now")
    clock = (lambda: moment) if moment else bootstrap.system_clock
    try:
        settings = Settings.from_env()
        if not os.environ.get("INVENTORY_STORAGE_RETRY_TOTAL"):
            settings = replace(settings, storage_retry_total=RETRY_TOTAL)
        bootstrap.install(bootstrap.build_services(settings, clock=clock, with_arm=with_arm))  # creates the tables if missing: the first request
    except StorageNotConfigured as exc:
        raise Failure(1, f"no inventory store is configured: {exc}") from None
    except InvalidSettings as exc:
        raise Failure(1, f"bad settings: {exc}") from None
    except ValueError as exc:  # a numeric setting int()/float() cannot read, or a connection string the SDK cannot parse
        raise Failure(1, f"bad settings: {exc}") from None
    return bootstrap.services()


def _queries(args: argparse.Namespace) -> InventoryQueries:
    return _services(args).queries


def _emit(args: argparse.Namespace, document: Any, rows: list[Entity], lines: Callable[[], list[str]],
          csv_header: Sequence[str] | None = None) -> int:
    if args.output == "json":
        print(to_json(document))
    elif args.output == "csv":
        sys.stdout.write(to_csv(rows, csv_header))
    else:
        print("\n".join(lines()))
    return 0


def _by_path(row: Entity) -> tuple[str, str]:
    return str(row.get("Service", "")).lower(), str(row.get("Path", "")).lower()


def _list(args: argparse.Namespace) -> int:
    kind = parse_kind(args.kind)
    queries = _queries(args)
    now = queries.clock()
    page = queries.list_kind(kind, service=args.service, include_deleted=args.include_deleted, top=None,
                             deleted_since=parse_when(args.deleted_since, "--deleted-since", now),
                             changed_since=parse_when(args.changed_since, "--changed-since", now))
    rows = sorted(page.rows, key=_by_path)
    deleted = ("DeletedAt",) if any(row.get("IsDeleted") for row in rows) else ()
    details = tuple(c for c in DETAIL_COLUMNS.get(kind, ()) if any(c in row for row in rows))
    header = ("Service", "Kind", "Path", "State", *EXTRA_COLUMNS.get(kind, ()), *details, *deleted, "LastEventType", "LastEventTime")
    return _emit(args, rows, rows, lambda: row_table(header, rows))


def _show(args: argparse.Namespace) -> int:
    row = _queries(args).resource(args.id)
    return _emit(args, row, [row], lambda: record_lines(row))


def _history(args: argparse.Namespace) -> int:
    queries = _queries(args)
    records = queries.history(args.id, parse_when(args.since, "--since", queries.clock()), with_children=args.with_children)
    header = ("EventTime", *(("Path",) if args.with_children else ()), "EventType", "Change", "Stale", "Duplicates", "EventId", "Values")
    return _emit(args, records, records, lambda: row_table(header, records))


def _changes(args: argparse.Namespace) -> int:
    queries = _queries(args)
    now = queries.clock()
    window: dict[str, Any] = {"since": parse_when(args.since, "--since", now), "until": parse_when(args.until, "--until", now),
                              "service": args.service, "kind": parse_kind(args.kind) if args.kind else None, "by": args.by}
    items: list[Entity] = []
    token = args.continuation
    while True:
        page = queries.changes(**window, top=parse_top(args.top) if args.top else MAX_TOP, continuation=token)
        items, token = items + page.items, page.continuation
        if token is None or args.top:
            break
    time = TIME_COLUMN[args.by]
    rows = [{**item, "Kind": item.get("ResourceKind")} for item in items]
    header = (time, "Service", "Kind", "Path", "Change", "EventType")
    csv_header = ("EventTime", "RecordedAt", "Service", "ResourceKind", "Path", "Change", "EventType", "EventId", "Stale")
    _emit(args, {"by": args.by, "count": len(items), "items": items, "continuationToken": token}, items,
          lambda: row_table(header, rows), csv_header=csv_header)
    if token is not None:
        print(f"{PROG}: more changes: add --continuation {token}", file=sys.stderr)
    return 0


def _flag(row: Entity) -> list[str]:
    if row.get("Kind") == Kind.GATEWAY_INSTANCE:
        verb = "expired" if row.get("TokenStatus") == "expired" else "expires"
        flag, detail = f"token {row.get('TokenStatus')}", f"{verb} {when(row.get('TokenExpiresAt'))}"
    else:
        flag = "breaker stuck open" if row.get("StuckOpen") else "breaker open"
        detail = f"opened {when(row.get('OpenedAt'))}, expected to close {when(row.get('ExpectedCloseAt'))}"
    return [*(row_value(row, column) for column in ("Service", "Kind", "Path")), flag, detail]


def _flags(args: argparse.Namespace) -> int:
    found = _queries(args).flags()
    rows = sorted(found["tokens"], key=_by_path) + sorted(found["breakers"], key=_by_path)
    return _emit(args, rows, rows, lambda: table(("Service", "Kind", "Path", "Flag", "Detail"), [_flag(r) for r in rows], ""))


def _summary(args: argparse.Namespace) -> int:
    summary = _queries(args).summary()
    resources, windows = summary["resources"], summary["events"]
    metrics = (Outcome.APPLIED, Outcome.STALE, Outcome.DUPLICATE, Outcome.REJECTED)
    long_rows = [{"Metric": m, "Service": r["service"], "Kind": r["kind"], "Count": r[m]} for r in resources for m in ("live", "deleted")]
    long_rows += [{"Metric": m, "Window": w, "Count": windows[w][m]} for w in windows for m in metrics]

    def lines() -> list[str]:
        counts = [[r["service"], r["kind"], str(r["live"]), str(r["deleted"])] for r in resources]
        events = [[w, *(str(windows[w][m]) for m in metrics)] for w in windows]
        return [f"Inventory at {when(summary['generatedAt'])}", "", *table(("Service", "Kind", "Live", "Deleted"), counts, ""),
                "", *table(("Events", *(m.capitalize() for m in metrics)), events, "")]

    return _emit(args, summary, long_rows, lines, csv_header=("Metric", "Window", "Service", "Kind", "Count"))


def _rejected(args: argparse.Namespace) -> int:
    queries = _queries(args)
    records = queries.rejected(parse_when(args.since, "--since", queries.clock()))
    header = ("ReceivedAt", "Reason", "EventId", "EventType", "Subject", "Message")
    return _emit(args, records, records, lambda: row_table(header, records))


def _read(name: str) -> list[str]:
    try:
        return list(read_events(sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")))
    except OSError as exc:
        raise Failure(2, f"{name}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not UTF-8, or a line that is not JSON
        raise Failure(2, f"{name}: {exc}") from None


def _replay(args: argparse.Namespace) -> int:
    if args.dead_letter is not None:
        return _replay_dead_letter(args)
    if not args.files or args.since or args.prefix or args.delete_after or args.connection_string:
        raise InvalidArgument("replay takes FILE arguments, or --dead-letter URL (with --since, --prefix, --delete-after, --connection-string)")
    payloads = [payload for name in args.files for payload in _read(name)]
    services = _services(args)
    processor = services.processor
    show_progress = sys.stderr.isatty() and len(payloads) > PROGRESS_ABOVE
    counts: Counter[str] = Counter()
    for number, payload in enumerate(payloads, 1):
        try:
            counts[apply(processor, payload)] += 1
        except Undecodable as exc:
            counts[UNDECODABLE] += 1
            print(f"{PROG}: warning: event {number} skipped, the Functions host cannot decode it: {exc}", file=sys.stderr)
        except STORE_ERRORS as exc:
            raise Failure(1, f"{_store_error(exc)} (after {number - 1} of {len(payloads)} events; replaying again is safe)") from None
        if show_progress and (number % 50 == 0 or number == len(payloads)):
            sys.stderr.write(progress(number, len(payloads)) + ("\n" if number == len(payloads) else ""))
            sys.stderr.flush()
    _replayed(services, "replay", counts)
    print(f"{len(payloads)} events: {outcome_text(counts)}")
    return 0


def _replayed(services: bootstrap.Services, run: str, counts: Counter[str], **extra: Any) -> None:
    """The end of a replay: the status rows written now, one summary line logged."""
    services.status.flush(services.clock())
    logging.getLogger("apim_inventory").info(summary_line(run, counts, **extra))


def _replay_dead_letter(args: argparse.Namespace) -> int:
    if args.files:
        raise InvalidArgument("replay takes FILE arguments or --dead-letter URL, not both")
    env = {**os.environ, **({blobs.SETTING: args.connection_string} if args.connection_string else {})}
    try:
        container = blobs.container_client(args.dead_letter, env, retry_total=RETRY_TOTAL)
    except ValueError as exc:
        raise Failure(2, f"--dead-letter: {exc}") from None
    services = _services(args)
    processor = services.processor

    def show(report: dead_letter.BlobReport) -> None:
        print(report.line(), flush=True)
        for problem in report.problems:
            print(f"{PROG}: warning: {report.name}: {problem}", file=sys.stderr, flush=True)

    try:
        run = dead_letter.replay(container, processor, show, since=parse_when(args.since, "--since", services.clock()), prefix=args.prefix,
                                 delete_after=args.delete_after)
    except dead_letter.DeadLetterError as exc:
        raise Failure(1, f"the dead-letter container: {exc}") from None
    except STORE_ERRORS as exc:
        raise Failure(1, f"{_store_error(exc)} (the blob is kept; replaying again is safe)") from None
    _replayed(services, "replay-dead-letter", run.counts, blobs=run.blobs, blobsDeleted=run.deleted)
    print(f"{run.blobs} blobs, {run.events} events: {outcome_text(run.counts)}; {run.deleted} blobs deleted, "
          f"{run.blobs - run.deleted} kept")
    return 1 if run.kept_with_problems else 0


def _purge(args: argparse.Namespace) -> int:
    results = _services(args).purger.run(dry_run=args.dry_run)
    count = "WouldDelete" if args.dry_run else "Deleted"
    rows = [{"What": r.what, "Table": r.table, "Before": r.before, count: r.deleted} for r in results]
    document = {"dryRun": args.dry_run, "results": [{"what": r.what, "table": r.table, "before": r.before, "deleted": r.deleted}
                                                    for r in results]}
    cells = [[r.what, r.table, when(r.before), str(r.deleted)] for r in results]
    header = ("What", "Table", "Before", count)
    return _emit(args, document, rows, lambda: table(header, cells, ""), csv_header=header)


def _migrate(args: argparse.Namespace) -> int:
    show = sys.stderr.isatty()

    def note(phase: str, done: int, total: int) -> None:
        if show:
            sys.stderr.write(f"{progress(done, total)} {phase}".ljust(72) + ("\n" if done == total else ""))
            sys.stderr.flush()

    report = Migration(_services(args).store, bootstrap.system_clock).migrate(note)
    print(f"history records moved: {report.copied}; kept in layout 1: {report.kept}; partitions counted: {report.partitions}")
    return 1 if report.kept else 0


def _sync(args: argparse.Namespace) -> int:
    syncer = _services(args, with_arm=True).reconciler.syncer
    assert syncer is not None
    show = sys.stderr.isatty()

    def note(phase: str, done: int, total: int | None) -> None:
        if show and phase != "write":  # a line that moves with the listing: the rows each page writes are few
            sys.stderr.write(f"\r{done} {phase}".ljust(72))
            sys.stderr.flush()

    report = syncer.step(args.service, note) if args.once else syncer.sync(args.service, note)
    if show:
        sys.stderr.write("\n")
    if report.stopped in (SyncStop.BUSY, SyncStop.LEASE_LOST):
        print(f"{PROG}: error: another invocation is syncing {report.service} (its lease on the checkpoint holds)", file=sys.stderr)
        return 1
    outcomes = tuple(SyncOutcome)
    kinds = [k for k in Kind if k in report.by_kind]
    cells = [[kind, *(str(report.by_kind[kind][o]) for o in outcomes)] for kind in kinds]
    cells.append(["total", *(str(report.counts[o]) for o in outcomes)])
    document = {"service": report.service, "startedAt": report.started_at, "listed": report.listed,
                "counts": {o: report.counts[o] for o in outcomes}, "byKind": {k: dict(report.by_kind[k]) for k in kinds},
                "incomplete": report.incomplete, "finished": report.finished, "stopped": report.stopped,
                "invocations": report.invocations, "kept": report.kept}
    rows = [{"Kind": c[0], **{o.capitalize(): int(v) for o, v in zip(outcomes, c[1:], strict=True)}} for c in cells]
    _emit(args, document, rows, lambda: table(("Kind", *(o.capitalize() for o in outcomes)), cells, ""))
    if not report.finished:
        print(f"{PROG}: the sync stopped ({report.stopped}) after {report.invocations} invocation(s); run it again to resume",
              file=sys.stderr)
        return 3
    for kind, reason in sorted(report.incomplete.items()):
        print(f"{PROG}: warning: {kind} not listed completely, so none of its rows was tombstoned: {_line(reason)}", file=sys.stderr)
    return 1 if report.incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
