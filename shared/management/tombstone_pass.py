"""A full sync's tombstone pass, once every collection is listed: the stored rows of a kind listed completely that no
page of the listing saw are the candidates; each is confirmed gone by a GET that answers 404 before its tombstone is
written, since a deletion between two pages shifts later items one offset back and a listing by offset then skips one.

A row in a workspace the listing did not see is never a candidate: a workspace confirmed gone is tombstoned and its
deletion carried to every row in it (shared.store.workspace_cascade), and a cascade left unfinished is finished by
the next tombstone pass over the workspace family.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from azure.core.exceptions import AzureError, ClientAuthenticationError

from shared.domain.details import resource_properties
from shared.domain.kinds import FACTS, LISTED, TOP_LEVEL, Kind, collection_of
from shared.domain.model import Change, Op, written_by
from shared.domain.outcomes import SyncOutcome, SyncStop
from shared.domain.resources import ResourceRef, ServiceRef, parse_path, within
from shared.integrations.arm import ArmClient, ArmNotFound, ArmThrottled
from shared.management.checkpoint import CLEANUP
from shared.management.listing_pass import SCAN_PAGE
from shared.management.plan_writer import TOMBSTONED_TYPE, Plan, PlanWriter, outcome
from shared.management.sync_invocation import Invocation, SyncStore
from shared.store import workspace_cascade
from shared.store.keys import of_family, resource_keys, rows_only, seen_pages
from shared.store.records import seen_row_keys
from shared.store.writer import Applied, RowWriter

log = logging.getLogger("apim_inventory.sync")
_LINKS = frozenset({Kind.GATEWAY_API, Kind.PRODUCT_API, Kind.PRODUCT_GROUP})


class TombstonePass:
    def __init__(self, arm: ArmClient, reader: SyncStore, writer: RowWriter, plans: PlanWriter) -> None:
        self.arm = arm
        self._reader = reader
        self._writer = writer
        self._plans = plans

    def run(self, run: Invocation) -> SyncStop | None:
        """Stored rows no page saw, family by family: tombstoned once ARM confirms them gone (kinds listed
        completely only); a gateway instance follows its gateway; the rest is left as it is. The budget and ARM's
        pacing are checked before each GET; a stop mid-page keeps the first row not handled, and the next
        invocation reads the page again from there."""
        cp, service, report = run.held.checkpoint, run.service, run.report
        complete = set[str](LISTED) - set(cp.incomplete)
        seen = self._seen(service)
        listings: dict[str, set[str] | None] = {}  # a parent's children ARM lists (gateway API links): one GET a pass
        asked = paged = False
        while cp.family < len(TOP_LEVEL):
            if paged and run.out_of_time():
                return SyncStop.BUDGET
            paged, family = True, TOP_LEVEL[cp.family]
            entities, token = self._reader.page(rows_only(of_family(family, service.key)), SCAN_PAGE, cp.after)
            for entity in entities:
                at = f"{entity['PartitionKey']}\n{entity['RowKey']}"
                if cp.resume_at is not None and at < cp.resume_at:
                    continue
                if entity["RowKey"] in seen[family]:
                    # Deleted by an event since S: its cascade, run or gone on with (by the next invocation, if cut short).
                    if (family is Kind.WORKSPACE and workspace_cascade.unfinished(entity)
                            and not self._finish_cascade(run, parse_path(service, entity["Path"]))):
                        cp.resume_at = at
                        return SyncStop.BUDGET
                    continue
                ref = parse_path(service, entity["Path"])
                # In a workspace the listing did not see (deleted, or the workspaces not listed completely): its
                # workspace's cascade, not this pass, tombstones it.
                unlisted = ref.workspace_ref is not None and resource_keys(ref.workspace_ref)[1] not in seen[Kind.WORKSPACE]
                if not FACTS[ref.kind].listed:  # a gateway instance, say: it only follows its parent
                    plan = Plan(ref, None, [])
                elif entity["Kind"] in complete and not entity.get("IsDeleted") and not unlisted:
                    if asked and (stop := SyncStop.BUDGET if run.out_of_time() else run.pace()) is not None:
                        cp.resume_at = at  # saved as the invocation ends
                        return stop
                    asked, cp.resume_at = True, at  # a throttled GET leaves the checkpoint here, too
                    gone = self._gone(service, ref, listings)
                    if gone is None:  # ARM could not be read (logged, with why): kept, neither confirmed nor "unchanged"
                        cp.unconfirmed += 1
                        continue
                    if not gone:
                        cp.kept += 1
                        log.warning("sync %s: %s was not listed but ARM has it (pages shifted): kept", service.name, ref.path[:200])
                        report.count(ref.kind, SyncOutcome.UNCHANGED)
                        continue
                    plan = Plan(ref, None, [Change(ref, Op.DELETED, run.stamp, TOMBSTONED_TYPE)])
                else:
                    ours = written_by(entity, run.stamp)
                    if ours:  # tombstoned by this sync before a crash (or a stop mid-cascade): its feed may be missing
                        self._writer.refeed(ref, run.stamp)
                    cut_short = ref.kind is Kind.WORKSPACE and workspace_cascade.unfinished(entity)
                    # A kind not listed completely was never compared; a workspace whose cascade this sync goes on with
                    # was counted as it tombstoned it.
                    if entity["Kind"] in complete and not unlisted and not (cut_short and ours):
                        report.count(ref.kind, SyncOutcome.UNCHANGED)
                    if cut_short and not self._finish_cascade(run, ref):
                        cp.resume_at = at
                        return SyncStop.BUDGET
                    continue
                run.renew()
                self._plans.write_one(plan, run.stamp, report)
                if ref.kind is Kind.WORKSPACE and not self._finish_cascade(run, ref):
                    cp.resume_at = at  # the workspace's row, now deleted: the next invocation finishes its cascade
                    return SyncStop.BUDGET
            cp.after, cp.resume_at = token, None
            if token is None:
                cp.family += 1
            run.commit()
        cp.phase = CLEANUP
        run.commit()
        return None

    def _finish_cascade(self, run: Invocation, workspace: ResourceRef) -> bool:
        """Give every row in a deleted workspace the workspace's deletion (shared.store.workspace_cascade): idempotent,
        so a cascade cut short, by a crash here or on the event path, is finished by the next pass that meets the
        workspace's row unmarked. The lease is renewed before each of its transactions (LeaseLost stops it); False
        when the invocation's budget ran out first, once at least one transaction of the cascade was written (so
        that each invocation moves it on): the next invocation goes on with it."""
        spent = False

        def between(applied: list[Applied]) -> bool:
            nonlocal spent
            run.renew()
            spent = run.out_of_time() and any(a.changed for a in applied)
            return not spent

        run.renew()
        for applied in workspace_cascade.cascade(self._reader, self._reader, self._writer, workspace, between=between):
            if applied.changed and applied.computed is not None:
                kind = parse_path(run.service, applied.computed["Path"]).kind
                run.report.count(kind, outcome(applied.before, applied.computed))
        return not spent

    def _seen(self, service: ServiceRef) -> defaultdict[str, set[str]]:
        """The RowKeys every page of the listing saw, by family."""
        seen: defaultdict[str, set[str]] = defaultdict(set)
        for page in self._reader.scan(seen_pages(service.key)):
            for row in page:
                seen[str(row.entity["Family"])].update(seen_row_keys(row.entity))
        return seen

    def _gone(self, service: ServiceRef, ref: ResourceRef, listings: dict[str, set[str] | None]) -> bool | None:
        """True when ARM answers 404 for the resource (for a gateway's API link or a backend's rule, which have no
        GET of their own: when the gateway's links or the backend's rules, read once a pass into `listings`, no
        longer hold it), False when ARM has it, None when ARM could not be read (the row is kept, unconfirmed)."""
        try:
            if ref.kind is Kind.CIRCUIT_BREAKER_RULE or ref.kind in _LINKS:  # no GET of their own
                parent = f"{service.resource_id}/{within(ref.workspace, f'{ref.segments[0]}/{ref.segments[1]}')}"
                links = collection_of(ref.kind, in_workspace=ref.workspace is not None)
                collection = parent if ref.kind is Kind.CIRCUIT_BREAKER_RULE else f"{parent}/{links}"
                if collection not in listings:
                    listings[collection] = self._children_names(collection, ref.kind)
                names = listings[collection]
                if names is None:
                    log.error("sync %s: could not confirm that %s is gone (ARM's list of them could not be read), kept",
                              service.name, ref.path[:200])
                    return None
                return ref.name.lower() not in names
            self.arm.get(ref.resource_id)
            return False
        except ArmNotFound:
            return True
        except (ClientAuthenticationError, ArmThrottled):
            raise
        except AzureError as exc:
            log.error("sync %s: could not confirm that %s is gone, kept: %s", service.name, ref.path[:200], exc)
            return None

    def _children_names(self, parent: str, kind: Kind) -> set[str] | None:
        """The lower-cased names of a backend's rules (`parent` the backend) or of a link collection (`parent` a
        gateway's or a product's `apis`, a product's `groups`); empty when the parent is gone, None when ARM could not
        be read (every child is kept)."""
        try:
            if kind is Kind.CIRCUIT_BREAKER_RULE:
                breaker = resource_properties(self.arm.get(parent)).get("circuitBreaker")
                rules = breaker.get("rules") if isinstance(breaker, dict) else None
                return {str(r.get("name")).lower() for r in rules or [] if isinstance(r, dict)}
            return {str(item.get("name")).lower() for item in self.arm.list(parent)}
        except ArmNotFound:
            return set()
        except (ClientAuthenticationError, ArmThrottled):
            raise
        except AzureError as exc:
            log.error("could not read %s, its children are kept: %s", parent[-200:], exc)
            return None
