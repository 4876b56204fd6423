"""Write generated gateway-log lines (devtools/gateway_logs.py) into append blobs the way a diagnostic setting archives
them: one blob per service per hour of arrival at the archive's path, one JSON object per line, appended minute by
minute, so an hour's blob keeps growing while the next one starts and some appends end in the middle of a line (the
rest comes with the next append). Uses the real Blob client (Azurite: devtools/azurite.py starts it with
--skipApiVersionCheck, since the client's default API version can be newer than Azurite's)."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient

from devtools.gateway_logs import Line, Service, service_resource_id

MAX_APPEND = 4 * 1024 * 1024  # an append block's limit on the older API versions Azurite serves


def blob_name(service: Service, moment: datetime) -> str:
    """The archive's path of `service`'s blob for the hour of `moment` (`m=00` always: one blob an hour)."""
    return (f"resourceId={service_resource_id(service)}/y={moment:%Y}/m={moment:%m}/d={moment:%d}/h={moment:%H}"
            "/m=00/PT1H.json")


@dataclass
class BlobWritten:
    name: str
    lines: int = 0  # complete lines, good or bad
    records: int = 0  # good records
    bad: int = 0
    bytes: int = 0
    appends: int = 0
    mid_line: int = 0  # appends that ended inside a line
    sizes: list[int] = field(default_factory=list)  # the blob's size after each append


@dataclass
class Written:
    container: str
    blobs: dict[str, BlobWritten] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def lines(self) -> int:
        return sum(b.lines for b in self.blobs.values())

    @property
    def records(self) -> int:
        return sum(b.records for b in self.blobs.values())

    @property
    def bytes(self) -> int:
        return sum(b.bytes for b in self.blobs.values())

    @property
    def appends(self) -> int:
        return sum(b.appends for b in self.blobs.values())

    @property
    def mid_line(self) -> int:
        return sum(b.mid_line for b in self.blobs.values())


class _Blob:
    def __init__(self, client: ContainerClient, report: BlobWritten, create: bool) -> None:
        self.client = client.get_blob_client(report.name)
        self.pending = bytearray()
        self.report = report
        if create:
            self.client.create_append_blob()

    def flush(self, hold_back: int) -> None:
        """Append what is pending but its last `hold_back` bytes (an append that ends mid-line)."""
        end = len(self.pending) - hold_back
        for start in range(0, end, MAX_APPEND):
            block = bytes(self.pending[start:min(end, start + MAX_APPEND)])
            self.client.append_block(block)
            self.report.appends += 1
            self.report.bytes += len(block)
            self.report.sizes.append(self.report.bytes)
        self.report.mid_line += hold_back > 0
        del self.pending[:end]


def write_lines(blobs: BlobServiceClient, container: str, lines: Iterable[Line], *, seed: int = 16, flush_seconds: int = 60,
                mid_line_share: float = 0.1, workers: int = 2) -> Written:
    """Append `lines` (in arrival order) to their blobs in `container` (created if missing), each blob flushed once a
    simulated `flush_seconds`; `workers` blobs are appended to at once. The blobs must not exist yet."""
    started = time.perf_counter()
    client = blobs.get_container_client(container)
    with contextlib.suppress(ResourceExistsError):
        client.create_container()
    rng = random.Random(seed)
    open_blobs: dict[str, _Blob] = {}
    written = Written(container)
    tick: int | None = None
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:

        def flush(final: bool) -> None:
            jobs = []
            for blob in open_blobs.values():
                if not blob.pending:
                    continue
                last = blob.pending.rfind(b"\n", 0, len(blob.pending) - 1) + 1  # where the last line starts
                line_length = len(blob.pending) - 1 - last
                cut = not final and line_length > 2 and rng.random() < mid_line_share
                jobs.append(pool.submit(blob.flush, rng.randint(1, line_length - 1) + 1 if cut else 0))
            for job in jobs:
                job.result()  # a failed append raises here

        for line in lines:
            now = int(line.arrival.timestamp()) // flush_seconds
            if tick is not None and now != tick:
                flush(final=False)
            tick = now
            name = blob_name(line.service, line.arrival)
            blob = open_blobs.get(name)
            if blob is None:  # a new blob, or one a late record comes back to
                report = written.blobs.get(name)
                blob = open_blobs[name] = _Blob(client, report or written.blobs.setdefault(name, BlobWritten(name)), report is None)
            blob.pending += line.text.encode("utf-8") + b"\n"
            blob.report.lines += 1
            blob.report.records += line.bad is None
            blob.report.bad += line.bad is not None
            if len(open_blobs) > 64:
                _close_idle(open_blobs)
        flush(final=True)
    written.seconds = time.perf_counter() - started
    return written


def _close_idle(open_blobs: dict[str, _Blob]) -> None:
    """Forget blobs with nothing pending (their report stays in `Written`), so memory stays bounded."""
    for name in [n for n, b in open_blobs.items() if not b.pending]:
        del open_blobs[name]
