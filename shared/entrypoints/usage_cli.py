"""The command's usage reports, from the gateway logs: `usage` (requests by resource in a window, `--unknown` for the
resources the inventory has no row of), `usage rejected` (the log lines not counted) and `unused` (live resources
with no request in N days). Registered by shared.entrypoints.cli, which lends the helpers every subcommand uses."""

from __future__ import annotations

import argparse
from typing import Any

from shared.domain.usage import COUNTED_KINDS
from shared.entrypoints import columns
from shared.entrypoints.cli_expiry import Lent
from shared.entrypoints.failures import checked
from shared.entrypoints.output import cell, table, when
from shared.queries.inventory import parse_when, service_name
from shared.queries.unused import DEFAULT_DAYS, UNUSED_KINDS, bad_lines, parse_days, parse_unused_kind, unused, unused_notes
from shared.queries.usage import DEFAULT_TOP, MAX_TOP, SORTS, parse_count, usage

REJECTED = "rejected"  # `usage rejected`: the subcommand's name, what people type


def register(lent: Lent) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add `usage` (a group: no subcommand is the report) and `unused`; the group, for the other `usage` subcommands."""
    sub = lent.command("usage", "requests by resource in a window, from the gateway logs: by category, failure rate, average "
                       "and worst duration, last use", lambda args: _usage(lent, args))
    sub.add_argument("--service", metavar="S", type=checked(service_name),
                     help="one APIM service, by name or ARM id (default: every service whose logs were read)")
    sub.add_argument("--kind", metavar="KIND", type=str.lower, choices=COUNTED_KINDS, help=f"one of: {', '.join(COUNTED_KINDS)}")
    lent.since(sub, "--since", "requests at or after T (default: 24h); read in whole clock hours, whole days where rolled up")
    lent.since(sub, "--until", "requests before T (default: now)")
    sub.add_argument("--top", metavar="N", default=str(DEFAULT_TOP), type=checked(lambda t: parse_count(t, "--top", DEFAULT_TOP, MAX_TOP)),
                     help=f"the first N (default {DEFAULT_TOP}, at most {MAX_TOP})")
    sub.add_argument("--sort", choices=tuple(SORTS), default="total", help="descending, then by path (default: total)")
    sub.add_argument("--unknown", action="store_true", help="only resources the inventory has no row of (never operations, "
                     "the all-access subscription master or requests with no subscription)")
    reports = sub.add_subparsers(dest="usage_command", metavar="SUBCOMMAND", title="subcommands (none: the report above)")
    bad = reports.add_parser(REJECTED, help="the log lines that were not counted, newest first: blob, offset, reason, excerpt",
                             description="the log lines that were not counted, newest first (GATEWAY_LOGS_CONTAINER's)")
    bad.set_defaults(run=lambda args: _rejected(lent, args))
    # SUPPRESS: an option not given here keeps what `usage` before the subcommand set (`usage -o json rejected`)
    bad.add_argument("--since", metavar="T", default=argparse.SUPPRESS, type=checked(lambda t: parse_when(t, "--since")),
                     help="lines seen at or after T (default: 7d)")
    bad.add_argument("-o", "--output", choices=("table", "wide", "json", "csv"), default=argparse.SUPPRESS, help="as for usage")
    # `usage ingest` (reading the logs now, as the gateway_logs timer does) is added to `reports` by its own module.

    sub = lent.command("unused", "live resources with no request in the last N days, the never-used too, from the gateway logs",
                       lambda args: _unused(lent, args))
    sub.add_argument("--kind", metavar="KIND", required=True, type=checked(parse_unused_kind), help=f"one of: {', '.join(UNUSED_KINDS)}")
    sub.add_argument("--days", metavar="N", default=str(DEFAULT_DAYS), type=checked(parse_days), help=f"default {DEFAULT_DAYS}")
    sub.add_argument("--service", metavar="S", type=checked(service_name), help="one APIM service, by name or ARM id (default: all)")
    return reports


def _usage(lent: Lent, args: argparse.Namespace) -> int:
    services = lent.services(args)
    now = services.clock()
    answer = usage(services.store, services.store, now, service=service_name(args.service) if args.service else None, kind=args.kind,
                   since=parse_when(args.since, "--since", now), until=parse_when(args.until, "--until", now), top=int(args.top),
                   sort=args.sort, unknown=args.unknown)

    def lines() -> list[str]:
        window = answer["window"]
        title = f"Requests from {when(window['from'])} to {when(window['until'])} (whole clock hours" + (
            f"; whole days from roll-ups: {', '.join(when(d)[:10] for d in window['rolledDays'])})" if window["rolledDays"] else ")")
        cells = [[cell(item[c]) if c != "failureRate" else f"{item[c]:.1%}" for c in columns.USAGE_COLUMNS] +
                 [{True: "yes", False: "no", None: "-"}[item["known"]]] for item in answer["items"]]
        more = [f"(the first {answer['count']}: --top N for more)"] if answer["continuationToken"] else []
        return [title, "", *table((*(_title(c) for c in columns.USAGE_COLUMNS), "Inventory"), cells, ""), *more] if cells else \
            [title, "", "(no requests)" if not args.unknown else "(no request of a resource the inventory does not know)"]

    return lent.emit(args, answer, answer["items"], lines, csv_header=columns.USAGE_CSV_COLUMNS)


def _rejected(lent: Lent, args: argparse.Namespace) -> int:
    services = lent.services(args)
    now = services.clock()
    found = bad_lines(services.store, now, services.settings.gateway_logs_container, parse_when(args.since, "--since", now))
    cells = [[when(i["seenAt"]), cell(i["blob"]), cell(i["offset"]), cell(i["reason"]), cell(i["excerpt"])] for i in found["items"]]
    return lent.emit(args, found, found["items"], lambda: table(tuple(_title(c) for c in columns.BAD_LINE_CSV_COLUMNS), cells, "")
                     if cells else [f"no bad lines in {found['container']} since {when(found['since'])}"],
                     csv_header=columns.BAD_LINE_CSV_COLUMNS)


def _unused(lent: Lent, args: argparse.Namespace) -> int:
    services = lent.services(args)
    service = services.queries.known_service(args.service) if args.service else None
    answer = unused(services.store, services.clock(), parse_unused_kind(args.kind), int(args.days), service)

    def lines() -> list[str]:
        cells = [[cell(item[c]) if item[c] is not None else ("never" if c == "lastUsedAt" else "") for c in columns.UNUSED_COLUMNS]
                 for item in answer["items"]]
        head = [f"{answer['kind']} with no request since {when(answer['since'])} ({answer['days']} days): {answer['count']}", *unused_notes(answer), ""]
        return [*head, *table(tuple(_title(c) for c in columns.UNUSED_COLUMNS), cells, "")] if cells else [*head, "(none)"]

    return lent.emit(args, answer, answer["items"], lines, csv_header=columns.UNUSED_CSV_COLUMNS)


def request_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """`summary -o csv`: each service's requests in each window, a row per count (`requests.total`, `requests.failed`, ...)."""
    return [{"Metric": f"requests.{name}", "Window": window, "Service": item["service"], "Count": count}
            for item in summary.get("requests", []) for window in summary["requestWindows"] for name, count in item[window].items()]


def request_lines(summary: dict[str, Any]) -> list[str]:
    """`summary`'s table of requests, when some service's gateway logs were read."""
    if not summary.get("requests"):
        return []
    windows = summary["requestWindows"]
    names = tuple(summary["requests"][0][next(iter(windows))])
    cells = [[window, item["service"], *(str(item[window][n]) for n in names)] for window in windows for item in summary["requests"]]
    starts = ", ".join(f"{window} from {when(span['from'])}" for window, span in windows.items())
    return ["", f"Requests in whole clock hours: {starts}", *table(("Window", "Service", *(_title(n) for n in names)), cells, "")]


def _title(column: str) -> str:
    return column[0].upper() + column[1:]

