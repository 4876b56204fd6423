"""The command's Activity Log group: `audit ingest` (one run of the `activity_logs` timer now) and `audit rejected`
(the records that were not kept); `audit backfill` is added to the same group by its own module. Registered by
shared.entrypoints.cli, which lends the helpers and the ingest's maker (the composition root is the command's)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from shared.audit.ingest import ActivityLogs
from shared.entrypoints import columns
from shared.entrypoints.cli_expiry import Lent
from shared.entrypoints.failures import USAGE, Failure, checked, then
from shared.entrypoints.output import cell, table, when
from shared.queries.inventory import parse_when, service_name
from shared.queries.keys import old_keys, parse_older_than
from shared.queries.unused import bad_lines

Maker = Callable[[argparse.Namespace], ActivityLogs | None]
INGEST_COLUMNS = ("Blobs", "Bytes", "Records", "Written", "Ignored", "BadRecords", "ClaimedElsewhere", "Seconds")
REJECTED = "rejected"  # `audit rejected`: the subcommand's name, what people type


def register(lent: Lent, make: Maker) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add `audit` and its `ingest` and `rejected`; the group's subcommands, for `backfill`."""
    group = lent.command("audit", "the Activity Log's records of APIM (who changed what): read the archive, list what was not kept",
                         lambda args: _no_subcommand(args))
    subcommands = group.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", title="subcommands")
    text = ("read the Activity Log's archive (ACTIVITY_LOGS_STORAGE, ACTIVITY_LOGS_CONTAINER) from each blob's checkpoint to its last "
            "complete line and write one audit record per operation: what the activity_logs timer does")
    ingest = subcommands.add_parser("ingest", help=text, description=text)
    ingest.add_argument("-o", "--output", choices=("table", "json"), default=argparse.SUPPRESS, help="table (default) or json")
    ingest.set_defaults(run=lambda args: _ingest(lent, args, make))
    bad = subcommands.add_parser(REJECTED, help="the Activity Log records that were not kept, newest first: where, reason, excerpt",
                                 description="the Activity Log records that were not kept (ACTIVITY_LOGS_CONTAINER's and the backfill's)")
    bad.add_argument("--since", metavar="T", default=argparse.SUPPRESS, type=checked(lambda t: parse_when(t, "--since")),
                     help="records seen at or after T (default: 7d)")
    bad.add_argument("-o", "--output", choices=("table", "wide", "json", "csv"), default=argparse.SUPPRESS, help="as for audit")
    bad.set_defaults(run=lambda args: _rejected(lent, args))
    keys = lent.command("keys", "live subscriptions whose keys were not regenerated through Resource Manager within a window, with "
                        "owner (a lower bound: the Activity Log's records only)", lambda args: _keys(lent, args))
    keys.add_argument("--older-than", metavar="D", default="90d", type=checked(parse_older_than), help="a duration: 90d (default), 12w")
    keys.add_argument("--service", metavar="S", type=checked(service_name), help="one APIM service, by name or ARM id (default: all)")
    return subcommands


def _no_subcommand(args: argparse.Namespace) -> int:
    raise Failure(USAGE, then("audit needs a subcommand", "apim-inventory audit ingest, or audit rejected"))


def _ingest(lent: Lent, args: argparse.Namespace, make: Maker) -> int:
    logs = make(args)
    if logs is None:
        raise Failure(USAGE, then("no archive to read: ACTIVITY_LOGS_STORAGE is not set",
                                  "set it to the connection string of the subscription diagnostic setting's storage account, or "
                                  "ACTIVITY_LOGS_STORAGE__blobServiceUri for a managed identity"))
    r = logs.ingest()
    row: dict[str, Any] = dict(zip(INGEST_COLUMNS, (r.blobs, r.bytes, r.records, r.written, r.ignored, r.bad, r.skipped, r.seconds), strict=True))
    document = {name[0].lower() + name[1:]: value for name, value in row.items()}
    return int(lent.emit(args, document, [row], lambda: table(INGEST_COLUMNS, [[str(v) for v in row.values()]], "")))


def _keys(lent: Lent, args: argparse.Namespace) -> int:
    services = lent.services(args)
    service = services.queries.known_service(args.service) if args.service else None
    answer = old_keys(services.store, services.clock(), parse_older_than(args.older_than), service)

    def lines() -> list[str]:
        cells = [[cell(i[c]) if i[c] is not None else ("-" if c.endswith("At") else "") for c in columns.KEYS_COLUMNS] for i in answer["items"]]
        head = [f"subscriptions with a key not regenerated since {when(answer['since'])}: {answer['count']}", answer["note"], ""]
        return [*head, *table(tuple(c[0].upper() + c[1:] for c in columns.KEYS_COLUMNS), cells, "")] if cells else [*head, "(none)"]

    return int(lent.emit(args, answer, answer["items"], lines, csv_header=columns.KEYS_CSV_COLUMNS))


def _rejected(lent: Lent, args: argparse.Namespace) -> int:
    services = lent.services(args)
    now = services.clock()
    found = bad_lines(services.store, now, services.settings.activity_logs_container, parse_when(getattr(args, "since", None), "--since", now))
    cells = [[when(i["seenAt"]), cell(i["blob"]), cell(i["offset"]), cell(i["reason"]), cell(i["excerpt"])] for i in found["items"]]
    titles = tuple(c[0].upper() + c[1:] for c in columns.BAD_LINE_CSV_COLUMNS)
    return int(lent.emit(args, found, found["items"], lambda: table(titles, cells, "") if cells
                         else [f"no bad Activity Log records since {when(found['since'])}"], csv_header=columns.BAD_LINE_CSV_COLUMNS))
