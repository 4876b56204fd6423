"""`apim-inventory audit backfill --since T [--until T] [--subscription S]`: the Activity Log's last 90 days (at most) through
its REST API into the audit records. Added by shared.entrypoints.cli to the `audit` group, which lends the backfill's maker
(the composition root is the command's to use) and its output."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from shared.audit.backfill import Backfill, BackfillFailed, BackfillReport, WindowReport, clamp, subscriptions_of
from shared.domain.errors import InvalidQuery
from shared.domain.times import iso_z
from shared.entrypoints.failures import FAILED, Failure, checked
from shared.entrypoints.output import table
from shared.queries.inventory import parse_when

PROG = "apim-inventory"
Maker = Callable[[argparse.Namespace, Callable[[WindowReport], None]], Backfill]
Services = Callable[[], tuple[str, ...]]  # the configured services' ARM ids (RECONCILE_SERVICES)
Emit = Callable[..., int]
COLUMNS = ("Subscription", "Since", "Until", "Pages", "Read", "Written", "Ignored", "Bad")
_SUBSCRIPTION = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def parse_subscription(text: str) -> str:
    """An Azure subscription id (a GUID), bare or as /subscriptions/{id}."""
    bare = text.strip().removeprefix("/subscriptions/").strip("/")
    if not _SUBSCRIPTION.match(bare):
        raise InvalidQuery(f"--subscription wants an Azure subscription id (a GUID), not {text[:100]!r}")
    return bare


def add_backfill_parser(subcommands: Any, make: Maker, services: Services, emit: Emit) -> argparse.ArgumentParser:
    """The `backfill` subcommand under `audit` (`subcommands` is its add_subparsers())."""
    text = ("read the Activity Log's REST API (Microsoft.ApiManagement operations, at most the last 90 days, which is all it keeps) "
            "into the audit records, one day at a time, with the app's ARM identity (Monitoring Reader or Reader on each "
            "subscription). Safe to run again: records are kept by their natural key, so a rerun or a resumed run writes nothing twice")
    sub: argparse.ArgumentParser = subcommands.add_parser("backfill", help=text, description=text)
    sub.add_argument("--since", metavar="T", required=True, type=checked(lambda t: parse_when(t, "--since")),
                     help="from T (ISO 8601 or a time ago, such as 90d); earlier than 90 days ago is read from 90 days ago, with a warning")
    sub.add_argument("--until", metavar="T", type=checked(lambda t: parse_when(t, "--until")), help="up to T (default: now)")
    sub.add_argument("--subscription", metavar="S", action="append", type=checked(parse_subscription),
                     help="this Azure subscription (repeatable; default: the subscriptions of the services RECONCILE_SERVICES names)")
    sub.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    sub.set_defaults(run=lambda args: run(args, make, services, emit))
    return sub


def _progress(window: WindowReport) -> None:
    print(f"{PROG}: backfill: {window.subscription} {iso_z(window.since)} to {iso_z(window.until)}: {window.read} read, "
          f"{window.written} written, {window.ignored} ignored, {window.bad} bad", file=sys.stderr)


def run(args: argparse.Namespace, make: Maker, services: Services, emit: Emit) -> int:
    now = parse_when(args.now, "--now") or datetime.now(timezone.utc)
    since = parse_when(args.since, "--since", now)
    until = parse_when(args.until, "--until", now)
    assert since is not None  # required
    span = clamp(since, until, now)
    for warning in span.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    subscriptions = tuple(dict.fromkeys(map(parse_subscription, args.subscription))) if args.subscription else subscriptions_of(services())
    backfill = make(args, _progress)
    try:
        report = backfill.run(span, subscriptions)
    except BackfillFailed as exc:
        raise Failure(FAILED, str(exc)) from None
    rows = [dict(zip(COLUMNS, (w.subscription, iso_z(w.since), iso_z(w.until), w.pages, w.read, w.written, w.ignored, w.bad), strict=True))
            for w in report.windows]
    return int(emit(args, document(report), rows, lambda: lines(report, rows)))


def document(report: BackfillReport) -> dict[str, Any]:
    return {"since": iso_z(report.span.since), "until": iso_z(report.span.until), "subscriptions": list(report.subscriptions),
            "warnings": list(report.span.warnings),
            **{name: report.total(name) for name in ("pages", "read", "written", "ignored", "bad")},
            "windows": [{"azureSubscription": w.subscription, "since": iso_z(w.since), "until": iso_z(w.until), "pages": w.pages,
                         "read": w.read, "written": w.written, "ignored": w.ignored, "bad": w.bad} for w in report.windows]}


def lines(report: BackfillReport, rows: list[dict[str, Any]]) -> list[str]:
    totals = ", ".join(f"{report.total(name)} {name}" for name in ("read", "written", "ignored", "bad"))
    return [*table(COLUMNS, [[str(value) for value in row.values()] for row in rows], ""),
            f"{len(report.subscriptions)} subscription(s), {iso_z(report.span.since)} to {iso_z(report.span.until)}: {totals}"]
