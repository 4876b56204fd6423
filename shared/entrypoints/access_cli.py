"""`apim-inventory access`: who can call an API, and what a user's subscriptions give access to."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from shared.entrypoints.columns import GRANT_COLUMNS, GRANT_CSV_COLUMNS, USER_COLUMNS, USER_CSV_COLUMNS, for_table
from shared.entrypoints.failures import checked
from shared.entrypoints.output import row_table, when
from shared.queries.inventory import InventoryQueries, resolve_id
from shared.store.ports import Entity

Command = Callable[[str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]
Emit = Callable[..., int]  # cli._emit: (args, document, rows, lines, csv_header=...)


def register(command: Command, queries: Callable[[argparse.Namespace], InventoryQueries], emit: Emit) -> argparse.ArgumentParser:
    """Add the `access` command to the parser (`command` is the parser's own helper); its parser, for more options."""
    def run(args: argparse.Namespace) -> int:
        found = queries(args)
        workspace = getattr(args, "workspace", None)
        if args.api:
            answer = found.access_to_api(args.api, workspace)
            return emit(args, answer, answer["callers"] + answer["notCallable"], lambda: api_lines(answer),
                        csv_header=GRANT_CSV_COLUMNS)
        answer = found.access_of_user(args.user, workspace)
        return emit(args, answer, answer["items"], lambda: user_lines(answer), csv_header=USER_CSV_COLUMNS)

    sub = command("access", "who can call an API and why (--api), or what a user's subscriptions give access to (--user)", run)
    which = sub.add_mutually_exclusive_group(required=True)
    which.add_argument("--api", metavar="ID", type=checked(resolve_id), help="an API (any revision names its API)")
    which.add_argument("--user", metavar="ID", type=checked(resolve_id), help="a user")
    return sub


def _as_of(answer: dict[str, Any]) -> str:
    moment = answer.get("membershipAsOf")
    return f"product membership as of {when(moment)}" if moment else "product membership never read completely (run a sync)"


def api_lines(answer: dict[str, Any]) -> list[str]:
    lines = [f"Open to anyone, no key needed: {reason}" for reason in answer["openToAnyone"]]
    products = ", ".join(str(p["Product"]) for p in answer["products"]) or "none"
    lines += [f"API {answer['service']}/{answer['path']}: in products {products}; {_as_of(answer)}", ""]
    header = for_table((*GRANT_COLUMNS, "Workspace"), answer["callers"] + answer["notCallable"])
    lines += [f"Can call ({len(answer['callers'])}):", *_rows(header, answer["callers"])]
    if answer["notCallable"]:
        lines += ["", f"Cannot call now, by state ({len(answer['notCallable'])}):", *_rows(header, answer["notCallable"])]
    return lines


def user_lines(answer: dict[str, Any]) -> list[str]:
    header = for_table((*USER_COLUMNS, "Workspace"), answer["items"])
    return [f"User {answer['service']}/users/{answer['name']}: {_as_of(answer)}", "", *_rows(header, answer["items"])]


def _rows(header: Sequence[str], rows: list[Entity]) -> list[str]:
    return row_table(header, rows) if rows else ["  (none)"]
