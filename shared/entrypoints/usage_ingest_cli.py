"""`apim-inventory usage ingest`: one run of the `gateway_logs` timer now (read the gateway logs' archive since its
checkpoints, count, roll up). Added by shared.entrypoints.cli to the `usage` group of usage_cli.py, lending the ingest's
maker (the composition root is the command's to use) and its output."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from shared.entrypoints.failures import USAGE, Failure, then
from shared.entrypoints.output import table
from shared.usage.ingest import GatewayLogs, IngestReport

Maker = Callable[[argparse.Namespace], GatewayLogs | None]
Emit = Callable[..., int]
COLUMNS = ("Blobs", "Bytes", "Records", "BadLines", "Contributions", "ClaimedElsewhere", "Replaced", "RolledDays", "Purged", "Seconds")


def add_ingest_parser(subcommands: Any, make: Maker, emit: Emit) -> argparse.ArgumentParser:
    """The `ingest` subcommand under `usage` (`subcommands` is its add_subparsers())."""
    text = ("read the gateway logs' archive (GATEWAY_LOGS_STORAGE, GATEWAY_LOGS_CONTAINER) from each blob's checkpoint to its "
            "last complete line, count the requests, roll up old hours and apply retention: what the gateway_logs timer does")
    sub: argparse.ArgumentParser = subcommands.add_parser("ingest", help=text, description=text)
    sub.add_argument("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    sub.set_defaults(run=lambda args: _ingest(args, make, emit))
    return sub


def report_row(report: IngestReport) -> dict[str, Any]:
    return dict(zip(COLUMNS, (report.blobs, report.bytes, report.records, report.bad_lines, report.contributions, report.skipped,
                              report.replaced, report.rollup.days, report.rollup.purged, report.seconds), strict=True))


def _ingest(args: argparse.Namespace, make: Maker, emit: Emit) -> int:
    logs = make(args)
    if logs is None:
        raise Failure(USAGE, then("no archive to read: GATEWAY_LOGS_STORAGE is not set",
                                  "set it to the connection string of the diagnostic setting's storage account, or "
                                  "GATEWAY_LOGS_STORAGE__blobServiceUri for a managed identity"))
    row = report_row(logs.ingest())
    document = {name[0].lower() + name[1:]: value for name, value in row.items()}
    return int(emit(args, document, [row], lambda: table(COLUMNS, [[str(v) for v in row.values()]], "")))
