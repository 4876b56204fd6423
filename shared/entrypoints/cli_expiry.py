"""The command's questions of time: what expires (`expiring`), which alerts were raised (`alerts`), and the sweep, with
its dry run. Registered by shared.entrypoints.cli, which lends the helpers every subcommand uses (`Lent`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain.errors import InvalidArgument
from shared.domain.flags import ALERT_PREFIX, Alert
from shared.entrypoints import columns
from shared.entrypoints.failures import checked
from shared.entrypoints.output import by_path, cell, row_table, table, when
from shared.queries.alerts import outbox_alerts
from shared.queries.expiring import DEFAULT_WITHIN, expiring, parse_within
from shared.queries.inventory import parse_when
from shared.store.outbox import LOG
from shared.store.ports import Entity
from shared.timers.sweep_preview import SWEPT, SweepPreview, preview

FUTURE_SLACK = timedelta(minutes=1)  # a --now this far ahead of the system clock is clock skew, not a what-if
Emit = Callable[..., int]


@dataclass(frozen=True)
class Lent:
    """What the command lends: its subcommand and time-argument makers, its services (bootstrap.Services), its output."""

    command: Callable[..., argparse.ArgumentParser]
    since: Callable[..., None]
    services: Callable[[argparse.Namespace], Any]
    emit: Emit


def register(lent: Lent) -> None:
    sub = lent.command("expiring", "gateway tokens and subscriptions that expire within a window, soonest first (the "
                       "expired first of all); worked out now, writing nothing", lambda args: _expiring(lent, args))
    sub.add_argument("--within", metavar="D", default=DEFAULT_WITHIN, type=checked(lambda text: parse_within(text, "--within")),
                     help=f"how far ahead: 90m, 24h, 30d, 2w (default: {DEFAULT_WITHIN}, from --now if given)")
    sub = lent.command("alerts", "the alert outbox: alerts pending, and those sent to the topic or logged, newest first",
                       lambda args: _alerts(lent, args))
    sub.add_argument("--pending", action="store_true", help="only the alerts not yet published")
    lent.since(sub, "--since", "only alerts raised at or after T")
    sub = lent.command("sweep", "run both timers now: gateway token expiry and stuck circuit breakers",
                       lambda args: _sweep(lent, args))
    sub.add_argument("--dry-run", action="store_true", help="show the transitions and alerts a sweep would make (at --now, "
                     "with the settings in effect, such as TOKEN_WARNING_DAYS); write nothing, send nothing")
    sub.add_argument("--force", action="store_true", help="write even though --now is in the future")


def _left(moment: datetime, now: datetime) -> str:
    """How long until a time ahead: `in 3d 4h`, `in 2h 5m`, `in 40m`."""
    minutes = int((moment - now).total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    return "in " + (f"{days}d {hours}h" if days else f"{hours}h {mins}m" if hours else f"{mins}m")


def _expiring(lent: Lent, args: argparse.Namespace) -> int:
    services = lent.services(args)
    now = services.clock()
    found = expiring(services.store, now, parse_within(args.within, "--within"))
    items: list[Entity] = found["items"]
    rows = [{**item, "Status": "expired" if item["Expired"] else _left(item["ExpiresAt"], now)} for item in items]
    return lent.emit(args, found, items, lambda: row_table(columns.EXPIRING_COLUMNS, rows), csv_header=columns.EXPIRING_CSV_COLUMNS)


def _alerts(lent: Lent, args: argparse.Namespace) -> int:
    services = lent.services(args)
    found = outbox_alerts(services.store, pending_only=args.pending, since=parse_when(args.since, "--since", services.clock()))
    cells = [[when(a["detectedAt"]), a["state"], str(a["type"]).removeprefix(ALERT_PREFIX), cell(a["service"]), cell(a["subject"]),
              when(a["sentAt"])] for a in found]
    return lent.emit(args, {"count": len(found), "items": found}, found, lambda: table(columns.ALERT_COLUMNS, cells, ""),
                     csv_header=columns.ALERT_CSV_COLUMNS)


def refuse_future(now: datetime, dry_run: bool, force: bool) -> None:
    """A sweep that would write the flags of a time still to come (tokens marked expired for good) and send their
    alerts is refused, unless asked for."""
    if not dry_run and not force and now > datetime.now(timezone.utc) + FUTURE_SLACK:
        raise InvalidArgument(f"--now {when(now)} is in the future: the sweep would store that time's flags (tokens marked expired "
                              "for good) and publish their alerts; add --dry-run to see what it would do, or --force to write")


def _sweep(lent: Lent, args: argparse.Namespace) -> int:
    moment = parse_when(args.now, "--now")
    if moment is not None:
        refuse_future(moment, args.dry_run, args.force)
    services = lent.services(args)
    if args.dry_run:
        return _dry_run(lent, args, services)
    sweeper = services.sweeper
    results = [sweeper.sweep_gateway_tokens(), sweeper.sweep_circuit_breakers()]
    published = "AlertsLogged" if any(r.alerts_to == LOG for r in results) else "AlertsSent"
    header = (*columns.SWEEP_COLUMNS, published, "AlertsPending")
    rows = [dict(zip(header, (r.kind, r.rows, r.changed, r.alerts_sent, r.alerts_pending), strict=True)) for r in results]
    if (stuck := results[-1].alerts_pending) and results[-1].alerts_to != LOG:  # the topic refused them: say so, once
        print(f"apim-inventory: warning: {stuck} alerts stay pending for the next sweep: the alerts topic did not take "
              "them (-v shows its answer)", file=sys.stderr)
    return lent.emit(args, rows, rows, lambda: table(header, [[str(v) for v in r.values()] for r in rows], ""), csv_header=header)


def _change_text(changes: dict[str, tuple[Any, Any]]) -> str:
    return "; ".join(f"{column} {_value(old)} -> {_value(new)}" for column, (old, new) in changes.items())


def _value(value: Any) -> str:
    return when(value) if isinstance(value, datetime) else cell(value) or "(none)"


def _dry_run(lent: Lent, args: argparse.Namespace, services: Any) -> int:
    now = services.clock()
    settings = services.settings
    previews: list[SweepPreview] = [preview(services.store, settings.flag_policy, now, kind) for kind in SWEPT]
    pending: list[Alert] = services.store.pending_alerts()
    changes = sorted(((p.kind, t) for p in previews for t in p.transitions), key=lambda c: (SWEPT.index(c[0]), *by_path(c[1].row)))
    rows = [{"Sweep": kind, "Service": t.row.get("Service"), "Kind": t.row.get("Kind"), "Path": t.row.get("Path"),
             "Change": _change_text(t.changes), "Alerts": " ".join(a.type.removeprefix(ALERT_PREFIX) for a in t.alerts)}
            for kind, t in changes]
    raised = [a for _, t in changes for a in t.alerts]
    document = {
        "dryRun": True, "now": now,
        "settings": {"TOKEN_WARNING_DAYS": settings.token_warning_days, "CIRCUIT_BREAKER_GRACE_MINUTES": settings.breaker_grace_minutes},
        "sweeps": [{"sweep": p.kind, "rows": p.rows, "wouldChange": len(p.transitions)} for p in previews],
        "transitions": [{**{k.lower(): v for k, v in row.items() if k not in ("Change", "Alerts")},
                         "resourceId": t.row.get("ResourceId"), "changes": {c: {"from": o, "to": n} for c, (o, n) in t.changes.items()},
                         "alerts": [_alert_document(a) for a in t.alerts]} for row, (_, t) in zip(rows, changes, strict=True)],
        "wouldRaise": len(raised), "pendingAlerts": [_alert_document(a) for a in pending],
    }

    def lines() -> list[str]:
        counts = [[p.kind, str(p.rows), str(len(p.transitions)), str(sum(len(t.alerts) for t in p.transitions))] for p in previews]
        out = [f"Dry run of a sweep at {when(now)} (TOKEN_WARNING_DAYS={settings.token_warning_days:g}, "
               f"CIRCUIT_BREAKER_GRACE_MINUTES={settings.breaker_grace_minutes:g}): nothing written, no alert sent", "",
               *table(columns.SWEEP_PREVIEW_COLUMNS, counts, "")]
        if rows:
            out += ["", *row_table(columns.SWEEP_CHANGE_COLUMNS[1:], rows)]
        out += ["", f"Alerts already pending, which the sweep would publish too: {len(pending)}"]
        return out

    return lent.emit(args, document, rows, lines, csv_header=columns.SWEEP_CHANGE_COLUMNS)


def _alert_document(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "type": alert.type, "subject": alert.subject, "time": alert.time, "data": alert.data}

