"""apim-inventory: the inventory from a shell. Query it, replay events into it, run the timers now."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from shared import bootstrap
from shared.audit.backfill import Backfill, WindowReport
from shared.config import Settings
from shared.domain.errors import InvalidArgument, PermanentEventError, one_line
from shared.domain.kinds import FACTS, TOP_LEVEL, Kind
from shared.domain.outcomes import Outcome, SyncOutcome, SyncStop
from shared.domain.resources import ServiceRef, parse_resource_id, parse_service_id
from shared.entrypoints import access_cli, audit_backfill_cli, audit_cli, cli_expiry, columns, usage_cli, usage_ingest_cli
from shared.entrypoints.failures import EXIT_CODES, FAILED, OK, STORE_ERRORS, USAGE, Failure, checked, explain, store_error, then
from shared.entrypoints.output import by_path, fit_tables, progress, record_lines, row_table, table, to_csv, to_json, when
from shared.ingest import dead_letter
from shared.ingest.replay import UNDECODABLE, Undecodable, handle, outcome_text
from shared.integrations import blobs
from shared.integrations.delivery import read_events
from shared.integrations.storage import connection_setting
from shared.logs import summary_line
from shared.migration.layout import Migration
from shared.queries.changes import TIME_COLUMN
from shared.queries.inventory import MAX_TOP, InventoryQueries, history_id, parse_kind, parse_top, parse_when, resolve_id, service_name
from shared.queries.workspaces import parse_workspace
from shared.store.ports import Entity

PROG = "apim-inventory"
RETRY_TOTAL = 1  # an unreachable store fails in a second, unless INVENTORY_STORAGE_RETRY_TOTAL says otherwise
PROGRESS_ABOVE = 200
WARNINGS = 10  # a replay names this many of its rejected or undecodable events
EPILOG = f"""\
The store comes from the same app settings as the function app (docs/settings.md): INVENTORY_STORAGE, INVENTORY_STORAGE__tableServiceUri,
AzureWebJobsStorage, INVENTORY_TABLE and the other table names. When the current directory has a local.settings.json, its "Values" are
used for every setting not already in the environment. INVENTORY_STORAGE_RETRY_TOTAL defaults to {RETRY_TOTAL} here, to fail fast.

Times (T) are ISO 8601, such as 2026-11-02T09:00:00Z, or a time ago: 30s, 90m, 24h, 7d, 2w (before --now, if given).
An ID is an ARM id, or SERVICE/PATH as in the Path column (contoso/apis/orders;rev=2, contoso/gateways/edge/instances/pod-1).
A service (S) is its name or its ARM id; a query names the services the inventory knows when given another.
Output (-o): an aligned table cut to the terminal's width, wide (every cell whole), json (every column), or csv (the table's
columns, docs/schema.md); --all-columns adds the bookkeeping columns to the table and csv.

{EXIT_CODES}"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {_line(message)} (see {self.prog} --help)\n")


def _moment(flag: str) -> Callable[[str], str]:
    """A time argument, checked as every time argument is: ISO 8601 or a time ago."""
    return checked(lambda text: parse_when(text, flag))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the pipeline does, on stderr")
    parser.add_argument("--now", metavar="T", type=_moment("--now"),
                        help="take T as the current time (summary windows, sweeps, replay): for events from the past")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = _Parser(add_help=False)
    output.add_argument("-o", "--output", choices=("table", "wide", "json", "csv"), default="table",
                        help="table (default; cut to the terminal's width), wide (every cell whole), json or csv")
    output.add_argument("--all-columns", action="store_true", help="table and csv: every column, bookkeeping ones too")

    def command(name: str, text: str, run: Callable[[argparse.Namespace], int], reads: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text, parents=[output] if reads else [], epilog=EXIT_CODES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(run=run)
        return sub

    def since(sub: argparse.ArgumentParser, flag: str, text: str, required: bool = False) -> None:
        sub.add_argument(flag, metavar="T", type=_moment(flag), help=text, required=required)

    def workspace(sub: argparse.ArgumentParser, what: str, text: str | None = None) -> None:
        sub.add_argument("--workspace", metavar="W", type=checked(_workspace_text),
                         help=text or f"only the {what} of workspace W (any case); - for the service-level {what} only")

    sub = command("list", "the rows of one kind (live ones, unless told otherwise)", _list)
    sub.add_argument("kind", metavar="KIND", type=checked(parse_kind), help=f"one of: {', '.join(Kind)}")
    sub.add_argument("--service", metavar="S", type=checked(service_name), help="one APIM service, by name or ARM id (default: all)")
    sub.add_argument("--include-deleted", action="store_true", help="tombstones too")
    since(sub, "--deleted-since", "only tombstones deleted at or after T")
    since(sub, "--changed-since", "only rows whose last event is at or after T")
    sub.add_argument("--owner", metavar="ID", help="subscriptions: only those of this user (its id)")
    sub.add_argument("--scope", metavar="ID", help="subscriptions: only those scoped to this API or product, or SERVICE/apis (all APIs)")
    sub.add_argument("--state", metavar="S", help="users, products, subscriptions: only those in state S (active, published, ...)")
    sub.add_argument("--approval-required", choices=("true", "false"), help="products: only those whose subscriptions need approval, or not")
    workspace(sub, "rows")
    command("show", "one resource, every column", _show).add_argument("id", metavar="ID", type=checked(resolve_id))
    sub = command("history", "a resource's history, newest first, with who made each change (the Activity Log's records)", _history)
    sub.add_argument("id", metavar="ID", type=checked(history_id), help="an ARM id or SERVICE/PATH; a path the inventory keeps no "
                     "rows of (SERVICE/namedValues/N, SERVICE/apis/A/policies/policy) gives its Activity Log records")
    since(sub, "--since", "only events at or after T")
    sub.add_argument("--with-children", action="store_true", help="with the history of its children (an API's revisions and "
                     "releases, a gateway's API links, hostname configurations, certificate authorities and instances)")
    sub = command("changes", "every change across the inventory in a window, newest first", _changes)
    since(sub, "--since", "changes at or after T", required=True)
    since(sub, "--until", "changes before T (default: now, included)")
    sub.add_argument("--service", metavar="S", type=checked(service_name), help="one APIM service, by name or ARM id (default: all)")
    sub.add_argument("--kind", metavar="KIND", type=checked(parse_kind), help="only resources of one kind")
    sub.add_argument("--by", choices=tuple(TIME_COLUMN), default="event",
                     help="order and filter by the time of the event in APIM (default), or by when it was recorded here")
    sub.add_argument("--top", metavar="N", type=checked(parse_top), help="one page of N (default: every change in the window)")
    sub.add_argument("--continuation", metavar="TOKEN", help="the page after the one that printed TOKEN")
    workspace(sub, "changes")
    workspace(access_cli.register(command, _queries, _emit), "", "--api: the API is workspace W's (an id without one); --user: only "
              "the user's subscriptions in workspace W; - for the service's own")
    command("flags", "gateway tokens near expiry or expired, circuit breakers open or stuck open", _flags)
    workspace(command("summary", "counts by kind and service (and workspace); events applied, stale, duplicate, rejected in the last "
                      "hour and day", _summary), "counts")
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
    sub.add_argument("--now", metavar="T", default=argparse.SUPPRESS, type=_moment("--now"),
                     help="take T as the current time for the cutoffs")
    command("migrate", "move the store to the current layout (history beside its rows, count rows, the change feed, "
            "the Workspace column on every row); idempotent: a rerun resumes where a run stopped", _migrate, reads=False)
    sub = command("sync", "a full sync of one APIM service from Azure Resource Manager: add, update, tombstone; resumes a "
                  "sync in progress (invocations of SYNC_TIME_BUDGET_SECONDS each, until it is done)", _sync)
    sub.add_argument("--service", required=True, metavar="S", type=checked(service_name),
                     help="the service's ARM id, /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME, "
                     "or the name of a service the inventory knows (or RECONCILE_SERVICES names)")
    sub.add_argument("--once", action="store_true", help="one invocation within the budget, as the reconcile timer runs it")
    cli_expiry.register(cli_expiry.Lent(command, since, _services, _emit))  # expiring, alerts, sweep
    usage_ingest_cli.add_ingest_parser(usage_cli.register(cli_expiry.Lent(command, since, _services, _emit)),  # usage, unused
                                       lambda args: bootstrap.gateway_logs((s := _services(args)).settings, store=s.store, clock=s.clock), _emit)
    audit = audit_cli.register(cli_expiry.Lent(command, since, _services, _emit),  # audit ingest, audit rejected
                               lambda args: bootstrap.activity_logs((s := _services(args)).settings, services_=s))
    audit_backfill_cli.add_backfill_parser(audit, _audit_backfill, lambda: Settings.from_env().reconcile_services, _emit)
    return parser


def _audit_backfill(args: argparse.Namespace, progress: Callable[[WindowReport], None]) -> Backfill:
    services = _services(args)
    return bootstrap.audit_backfill(services.settings, bootstrap.audit_writer(services), progress)


def main(argv: Sequence[str] | None = None) -> int:
    verbose = False
    try:
        args = _parser().parse_args(argv)
        verbose = args.verbose
        logging.basicConfig(level=logging.WARNING if verbose else logging.ERROR, format=f"{PROG}: %(name)s: %(message)s")
        # Without -v the command reports every failure itself, once, in one line: the pipeline's own log lines would repeat it.
        logging.getLogger("apim_inventory").setLevel(logging.INFO if verbose else logging.CRITICAL)
        fit_tables(_terminal_width() if getattr(args, "output", None) == "table" else None)
        _load_local_settings(Path("local.settings.json"))
        return int(args.run(args))
    except SystemExit as exc:  # argparse: --help, or a usage error it has printed
        return exc.code if isinstance(exc.code, int) else OK if exc.code is None else USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return FAILED
    except Exception as exc:
        known = explain(exc)
        if verbose:  # the whole story: azure-core's full text, each credential's reason, the traceback
            traceback.print_exc()
        if known is None:
            return _fail(f"unexpected {type(exc).__name__}: {one_line(exc)}", FAILED)
        return _fail(known[1], known[0])


def _terminal_width() -> int | None:
    """The terminal's width when stdout is one (or COLUMNS says it): piped tables keep every cell whole."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").strip().isdigit():
        return shutil.get_terminal_size().columns
    return None


def _line(text: str) -> str:
    return " ".join(text.splitlines()).strip()


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {_line(message)}", file=sys.stderr)
    return code


def _load_local_settings(path: Path) -> None:
    if not path.is_file():
        return
    fix = "fix the file (local.settings.sample.json shows its shape)"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Failure(USAGE, then(f"{path} cannot be read: {exc.strerror or exc}", "check its permissions")) from None
    except ValueError as exc:  # not UTF-8, or not JSON
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise Failure(USAGE, then(f"{path} is not JSON{where}: {getattr(exc, 'msg', exc)}", fix)) from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(values, dict | None):
        what, found = ('"Values"', values) if isinstance(document, dict) else ("the file", document)
        raise Failure(USAGE, then(f"{path}: {what} must be an object of setting names and values, not {_json_type(found)}", fix))
    for key, value in (values or {}).items():
        if value is not None:
            os.environ.setdefault(str(key), str(value))


def _json_type(value: object) -> str:
    return {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}.get(type(value), "null")


def _services(args: argparse.Namespace, with_arm: bool = False) -> bootstrap.Services:
    moment = parse_when(args.now, "--now")
    clock = (lambda: moment) if moment else bootstrap.system_clock
    settings = Settings.from_env()  # InvalidSettings names the setting: main says so, exit code 2
    if not os.environ.get("INVENTORY_STORAGE_RETRY_TOTAL"):
        settings = replace(settings, storage_retry_total=RETRY_TOTAL)
    try:
        bootstrap.install(bootstrap.build_services(settings, clock=clock, with_arm=with_arm))  # creates the tables if missing: the first request
    except ValueError as exc:  # a connection string the SDK cannot parse
        setting = connection_setting() or "INVENTORY_STORAGE"
        raise Failure(USAGE, then(f"bad setting: {setting} is not a connection string the Table SDK can use: {one_line(exc, 200)}",
                                  f"fix {setting}, or set UseDevelopmentStorage=true for Azurite")) from None
    return bootstrap.services()


def _workspace_text(text: str) -> str:
    """--workspace as typed, once it is a workspace's name or "-" (the query layer lower-cases it)."""
    parse_workspace(text)
    return text


def _queries(args: argparse.Namespace) -> InventoryQueries:
    return _services(args).queries


def _emit(args: argparse.Namespace, document: Any, rows: list[Entity], lines: Callable[[], list[str]],
          csv_header: Sequence[str] | None = None) -> int:
    """JSON: the document; CSV: `csv_header`'s columns (with --all-columns, the rows' others after them); else the lines."""
    if args.output == "json":
        print(to_json(document))
    elif args.output == "csv":
        sys.stdout.write(to_csv(rows, columns.with_all(csv_header or (), rows, csv_header is None or getattr(args, "all_columns", False))))
    else:
        print("\n".join(lines()))
    return OK


def _listing(args: argparse.Namespace, document: Any, rows: list[Entity], header: Sequence[str]) -> int:
    """Rows as the table and the CSV show them: the same documented columns (`columns`), the bookkeeping ones only with
    --all-columns; JSON keeps every column."""
    shown = columns.with_all(header, rows, getattr(args, "all_columns", False))
    return _emit(args, document, rows, lambda: row_table(shown, rows), csv_header=shown)


def _service(args: argparse.Namespace, queries: InventoryQueries) -> str | None:
    """--service as the name of a service the inventory knows (NotFound, naming the known ones, for any other)."""
    return queries.known_service(args.service) if args.service else None


def _list(args: argparse.Namespace) -> int:
    kind = parse_kind(args.kind)
    queries = _queries(args)
    now = queries.clock()
    page = queries.list_kind(kind, service=_service(args, queries), include_deleted=args.include_deleted, top=None,
                             deleted_since=parse_when(args.deleted_since, "--deleted-since", now),
                             changed_since=parse_when(args.changed_since, "--changed-since", now), owner=args.owner,
                             scope=args.scope, state=args.state, workspace=args.workspace,
                             approval_required=None if args.approval_required is None else args.approval_required == "true")
    rows = sorted(page.rows, key=by_path)
    header = columns.LIST_COLUMNS[kind]
    shown = columns.with_all(columns.for_table(header, rows), rows, getattr(args, "all_columns", False))
    return _emit(args, rows, rows, lambda: row_table(shown, rows), csv_header=columns.with_all(header, rows, args.all_columns))


def _show(args: argparse.Namespace) -> int:
    row = _queries(args).resource(args.id)
    return _emit(args, row, [row], lambda: record_lines(row))


def _history(args: argparse.Namespace) -> int:
    queries = _queries(args)
    records = queries.history(args.id, parse_when(args.since, "--since", queries.clock()), with_children=args.with_children)
    rows = [{**r, "Caller": columns.caller_text(r)} for r in records]
    return _listing(args, records, rows, columns.HISTORY_COLUMNS if args.output == "csv" else columns.with_caller(columns.HISTORY_COLUMNS, rows))


def _changes(args: argparse.Namespace) -> int:
    queries = _queries(args)
    now = queries.clock()
    window: dict[str, Any] = {"since": parse_when(args.since, "--since", now), "until": parse_when(args.until, "--until", now),
                              "service": _service(args, queries), "kind": parse_kind(args.kind) if args.kind else None, "by": args.by,
                              "workspace": args.workspace}
    items: list[Entity] = []
    token = args.continuation
    while True:
        page = queries.changes(**window, top=parse_top(args.top) if args.top else MAX_TOP, continuation=token)
        items, token = items + page.items, page.continuation
        if token is None or args.top:
            break
    rows = [{**item, "Kind": item.get("ResourceKind"), "Caller": columns.caller_text(item)} for item in items]
    header = columns.with_all(columns.with_caller(columns.for_table((TIME_COLUMN[args.by], *columns.CHANGES_COLUMNS, "Workspace"), rows), rows),
                              rows, args.all_columns)
    _emit(args, {"by": args.by, "count": len(items), "items": items, "continuationToken": token}, rows,
          lambda: row_table(header, rows), csv_header=columns.CHANGES_CSV_COLUMNS)
    if token is not None:
        print(f"{PROG}: more changes: add --continuation {token}", file=sys.stderr)
    return OK


def _flags(args: argparse.Namespace) -> int:
    queries = _queries(args)
    found = queries.flags()
    rows = sorted(found["tokens"], key=by_path) + sorted(found["breakers"], key=by_path)
    shown = [columns.flag_row(row, queries.clock()) for row in rows]
    header = columns.with_all(columns.FLAG_COLUMNS, rows, args.all_columns)
    return _emit(args, rows, shown, lambda: row_table(header, shown), csv_header=header)


def _summary(args: argparse.Namespace) -> int:
    summary = _queries(args).summary(args.workspace)
    resources, windows, workspaces = summary["resources"], summary["events"], summary["workspaces"]
    metrics = (Outcome.APPLIED, Outcome.STALE, Outcome.DUPLICATE, Outcome.REJECTED)
    chosen = summary.get("workspace")
    long_rows = [{"Metric": m, "Service": r["service"], "Kind": r["kind"], "Count": r[m], **({"Workspace": chosen} if chosen else {})}
                 for r in resources for m in ("live", "deleted")]
    trends = summary["trends"]  # each resources item's change over 7 and 30 days (the daily snapshots), in the same order
    long_rows += [{"Metric": m, "Service": r["service"], "Kind": r["kind"], "Count": r[m], **({"Workspace": chosen} if chosen else {})}
                  for r in trends for m in TREND_METRICS if r.get(m) is not None]
    if chosen is None:
        long_rows += [{"Metric": m, "Service": r["service"], "Kind": r["kind"], "Count": r[m], "Workspace": r["workspace"]}
                      for r in workspaces for m in ("live", "deleted")]
    long_rows += [{"Metric": m, "Window": w, "Count": windows[w][m]} for w in windows for m in metrics]
    long_rows += usage_cli.request_rows(summary)

    def lines() -> list[str]:
        counts = [[r["service"], r["kind"], str(r["live"]), str(r["deleted"]), *(_signed(t.get(m)) for m in TREND_METRICS[:2])]
                  for r, t in zip(resources, trends, strict=True)]
        events = [[w, *(str(windows[w][m]) for m in metrics)] for w in windows]
        title = f"Inventory at {when(summary['generatedAt'])}" + (
            "" if chosen is None else ", service level only" if chosen == "-" else f", workspace {chosen}")
        parts = [title, "", *table(("Service", "Kind", "Live", "Deleted", "Live 7d", "Live 30d"), counts, "")]
        if chosen is None and workspaces:
            rows = [[r["service"], r["workspace"], r["kind"], str(r["live"]), str(r["deleted"])] for r in workspaces]
            parts += ["", "In workspaces (included above):", *table(("Service", "Workspace", "Kind", "Live", "Deleted"), rows, "")]
        return [*parts, "", *table(("Events", *(m.capitalize() for m in metrics)), events, ""), *usage_cli.request_lines(summary)]

    return _emit(args, summary, long_rows, lines, csv_header=columns.SUMMARY_CSV_COLUMNS)


TREND_METRICS = ("liveChange7d", "liveChange30d", "deletedChange7d", "deletedChange30d")


def _signed(value: object) -> str:
    """A change as the table shows it: +3, -1, 0, or `-` when no snapshot is old enough."""
    return f"{value:+d}" if isinstance(value, int) and value else "0" if value == 0 else "-"


def _rejected(args: argparse.Namespace) -> int:
    queries = _queries(args)
    records = queries.rejected(parse_when(args.since, "--since", queries.clock()))
    return _listing(args, records, records, columns.REJECTED_COLUMNS)


def _read(name: str) -> list[str]:
    try:
        return list(read_events(sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")))
    except OSError as exc:
        raise Failure(USAGE, then(f"{name} cannot be read: {exc.strerror or exc}", "check the path")) from None
    except ValueError as exc:  # not UTF-8, or a line that is not JSON
        raise Failure(USAGE, then(f"{name}: {one_line(exc, 300)}", "fix the file: a JSON array of events, or one event per line")) from None


def _replay(args: argparse.Namespace) -> int:
    if args.dead_letter is not None:
        return _replay_dead_letter(args)
    if not args.files or args.since or args.prefix or args.delete_after or args.connection_string:
        raise InvalidArgument("replay takes FILE arguments, or --dead-letter URL (with --since, --prefix, --delete-after, --connection-string)")
    payloads = [(name, index, payload) for name in args.files for index, payload in enumerate(_read(name), 1)]
    services = _services(args)
    processor = services.processor
    show_progress = sys.stderr.isatty() and len(payloads) > PROGRESS_ABOVE
    counts: Counter[str] = Counter()

    def warn(text: str) -> None:  # the first few problems in words; the error line at the end counts them all
        if counts[Outcome.REJECTED] + counts[UNDECODABLE] <= WARNINGS:
            print(f"{PROG}: warning: {text}", file=sys.stderr)

    for number, (name, index, payload) in enumerate(payloads, 1):
        try:
            result = handle(processor, payload)
            counts[result.outcome] += 1
            if result.outcome == Outcome.REJECTED:
                warn(f"{name}: event {index}: rejected ({result.reason}): {result.message}")
        except Undecodable as exc:
            counts[UNDECODABLE] += 1
            warn(f"{name}: event {index}: skipped, the Functions host cannot decode it: {exc}")
        except STORE_ERRORS as exc:
            raise Failure(FAILED, f"after {number - 1} of {len(payloads)} events: {store_error(exc)}") from None
        if show_progress and (number % 50 == 0 or number == len(payloads)):
            sys.stderr.write(progress(number, len(payloads)) + ("\n" if number == len(payloads) else ""))
            sys.stderr.flush()
    _replayed(services, "replay", counts)
    print(f"{len(payloads)} events: {outcome_text(counts)}")
    return _unapplied(counts, len(payloads))


def _unapplied(counts: Counter[str], events: int, warned: bool = True) -> int:
    """A replay is incomplete when an event could not be decoded or was rejected: one error line, exit code 1."""
    undecodable, rejected = counts[UNDECODABLE], counts[Outcome.REJECTED]
    if not undecodable and not rejected:
        return OK
    parts = [f"{undecodable} could not be decoded"] * bool(undecodable) + [f"{rejected} were rejected"] * bool(rejected)
    named = (", as the warnings above say" + (f" (of the first {WARNINGS})" if undecodable + rejected > WARNINGS else "")) if warned else ""
    return _fail(then(f"of {events} events, {' and '.join(parts)}{named}",
                      "fix those events and replay them (`apim-inventory rejected` lists the rejected ones; the others are kept as they were)"),
                 FAILED)


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
        raise Failure(USAGE, f"--dead-letter: {exc}") from None
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
        raise Failure(FAILED, then(f"the dead-letter container: {exc}", "check --dead-letter and the credential for the account")) from None
    except STORE_ERRORS as exc:
        raise Failure(FAILED, f"the blob is kept: {store_error(exc)}") from None
    _replayed(services, "replay-dead-letter", run.counts, blobs=run.blobs, blobsDeleted=run.deleted)
    print(f"{run.blobs} blobs, {run.events} events: {outcome_text(run.counts)}; {run.deleted} blobs deleted, "
          f"{run.blobs - run.deleted} kept")
    if run.kept_with_problems and not (run.counts[UNDECODABLE] or run.counts[Outcome.REJECTED]):
        return _fail(then(f"{len(run.kept_with_problems)} blobs could not be read whole, as the warnings above say", "fix or delete them"), FAILED)
    return _unapplied(run.counts, run.events, warned=bool(run.counts[UNDECODABLE]))


def _purge(args: argparse.Namespace) -> int:
    results = _services(args).purger.run(dry_run=args.dry_run)
    count = "WouldDelete" if args.dry_run else "Deleted"
    rows = [{"What": r.what, "Table": r.table, "Before": r.before, count: r.deleted} for r in results]
    document = {"dryRun": args.dry_run, "results": [{"what": r.what, "table": r.table, "before": r.before, count[0].lower() + count[1:]: r.deleted}
                                                    for r in results]}
    cells = [[r.what, r.table, when(r.before), str(r.deleted)] for r in results]
    header = (*columns.PURGE_COLUMNS, count)
    total = sum(r.deleted for r in results)
    note = [f"dry run: would delete {total} rows; nothing was deleted"] if args.dry_run else []
    return _emit(args, document, rows, lambda: [*table(header, cells, ""), *note], csv_header=header)


def _migrate(args: argparse.Namespace) -> int:
    show = sys.stderr.isatty()

    def note(phase: str, done: int, total: int) -> None:
        if show:
            sys.stderr.write(f"{progress(done, total)} {phase}".ljust(72) + ("\n" if done == total else ""))
            sys.stderr.flush()

    report = Migration(_services(args).store, bootstrap.system_clock).migrate(note)
    print(f"history records moved: {report.copied}; kept in layout 1: {report.kept}; "
          f"rows given a Workspace column: {report.workspaces_filled}; partitions counted: {report.partitions}")
    if report.kept:
        return _fail(then(f"{report.kept} history records stay in layout 1 (--verbose says why)", "run migrate again: it resumes"), FAILED)
    return OK


def _sync(args: argparse.Namespace) -> int:
    services = _services(args, with_arm=True)
    syncer = services.reconciler.syncer
    assert syncer is not None
    service = _sync_target(args.service, services)
    show = sys.stderr.isatty()

    def note(phase: str, done: int, total: int | None) -> None:
        if show and phase != "write":  # a line that moves with the listing: the rows each page writes are few
            sys.stderr.write(f"\r{done} {phase}".ljust(72))
            sys.stderr.flush()

    report = syncer.step(service, note) if args.once else syncer.sync(service, note)
    if show:
        sys.stderr.write("\n")
    if report.stopped in (SyncStop.BUSY, SyncStop.LEASE_LOST):
        raise Failure(FAILED, then(f"another invocation is syncing {report.service} (its lease on the checkpoint holds)",
                                   "wait for it to finish, then run again"))
    outcomes = tuple(SyncOutcome)
    kinds = [k for k in Kind if k in report.by_kind or k in report.incomplete]
    cells = [[kind, *(str(report.by_kind[kind][o]) for o in outcomes), "no" if kind in report.incomplete else "yes"] for kind in kinds]
    cells.append(["total", *(str(report.counts[o]) for o in outcomes), "no" if report.incomplete else "yes"])
    document = {"service": report.service, "startedAt": report.started_at, "listed": report.listed,
                "counts": {o: report.counts[o] for o in outcomes}, "byKind": {k: dict(report.by_kind[k]) for k in kinds},
                "incomplete": report.incomplete, "finished": report.finished, "stopped": report.stopped,
                "invocations": report.invocations, "kept": report.kept, "unconfirmed": report.unconfirmed}
    header = ("Kind", *(o.capitalize() for o in outcomes), "Listed")
    rows = [{"Kind": c[0], **{o.capitalize(): int(v) for o, v in zip(outcomes, c[1:-1], strict=True)}, "Listed": c[-1]} for c in cells]
    _emit(args, document, rows, lambda: table(header, cells, ""), csv_header=header)
    if not report.finished:
        return _fail(then(f"the sync of {report.service} stopped ({report.stopped}) after {report.invocations} invocation(s)",
                          "run it again to resume"), FAILED)
    if report.incomplete:
        return _fail(_not_listed(report.incomplete), FAILED)
    if report.unconfirmed:
        return _fail(then(f"{report.unconfirmed} rows ARM no longer listed were kept: ARM could not be read to confirm them gone "
                          "(the log says why)", "run the sync again"), FAILED)
    return OK


def _not_listed(incomplete: dict[str, str]) -> str:
    """The kinds a sync could not list, grouped by why (one listing failure often stops them all), as one line."""
    by_reason: dict[str, list[str]] = {}
    for kind in Kind:  # a kind whose parent was not listed joins its parent's reason (kinds come parents first)
        parent = FACTS[kind].parent or FACTS[kind].family  # a backend's rules are read from the backend
        if kind in incomplete:
            reason = next((r for r, kinds in by_reason.items() if parent in kinds), None) or one_line(incomplete[kind], 300)
            by_reason.setdefault(reason, []).append(kind)
    reasons = "; ".join(f"{', '.join(kinds)}: {reason}" for reason, kinds in by_reason.items())
    return then(f"ARM: not every kind was listed, so no row of these was tombstoned ({reasons})", "run the sync again once ARM answers")


def _sync_target(text: str, services: bootstrap.Services) -> ServiceRef:
    """The service to sync: its ARM id (a new service too), or the name of one RECONCILE_SERVICES names or the
    inventory holds rows of (their ARM ids name its subscription and resource group)."""
    if text.strip().lower().startswith("/subscriptions/"):
        return parse_service_id(text.strip())
    name = service_name(text).lower()
    for service in services.reconciler.services:
        if service.name.lower() == name:
            return service
    queries = services.queries
    for kind in TOP_LEVEL:
        rows = queries.list_kind(kind, service=name, include_deleted=True, top=1).rows
        if rows and isinstance(rows[0].get("ResourceId"), str):
            try:
                return parse_resource_id(rows[0]["ResourceId"])[0]
            except PermanentEventError:
                continue
    raise Failure(USAGE, then(f"sync needs the ARM id of service {text.strip()[:100]!r}: the inventory holds no row of it",
                              "give --service /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME"))


if __name__ == "__main__":
    sys.exit(main())
