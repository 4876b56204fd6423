"""Usage benchmark: the app's ingest of 1,000,000 gateway-log records (x BENCH_SCALE) from Azurite append blobs, against
the JSON parser alone on the same lines, in the same run.

The records (devtools/gateway_logs.py: Microsoft's record shape and a realistic mix) are written into append blobs at the
archive's paths (devtools/gateway_log_blobs.py) first; that is timed apart and never counted in the rates. Then, each in
a process of its own, so that its peak memory is its own:
- read alone: the blobs downloaded in ranges of 4 MiB, cut at the last newline, split into lines (what any reader pays);
- parse alone: the same lines parsed by `json.loads`, and by the candidates on PyPI (orjson, msgspec untyped, msgspec
  decoding into a Struct of the fields the usage table needs), each timed over the same lines;
- the app's ingest (`INGEST`), as the timer runs it: records per second, their ratio to the json.loads rate (goal at
  least 0.5), Table requests per 1,000 records and per distinct hour x resource pair, and peak memory (a 1 GB blob must
  never be held whole);
- the stream route: the same records as Event Hubs would deliver them (STREAM_RECORDS records an event, STREAM_EVENTS
  events a call, spread over STREAM_PARTITIONS partitions), each call's input decoded by the library's Event Hub
  converter and handed to the indexed `gateway_logs_stream`, into a usage table of its own; only the decoding and the
  calls are timed (the events are cut from the blobs' lines as they go), beside the archive route's rate.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ContainerClient

from devtools.azurite import Azurite
from devtools.gateway_log_blobs import write_lines
from devtools.gateway_logs import Api, Generator, Product, Service, Subscription, Traffic, Truth

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
RECORDS = max(1000, round(1_000_000 * SCALE))
HOURS = int(os.environ.get("BENCH_USAGE_HOURS", "24"))  # 1: each service's records in one blob (about 500 MB for the busiest)
START = datetime(2026, 11, 30, tzinfo=UTC)
NOW = START + timedelta(hours=HOURS + 1)  # the ingest runs an hour after the last record's hour
CONTAINER = "insights-logs-gatewaylogs"
CHUNK = 4 * 1024 * 1024
GOAL_RATIO = 0.5
STREAM_RECORDS, STREAM_EVENTS, STREAM_PARTITIONS = 50, 100, 4  # 100: the Event Hubs extension's default maxEventBatchSize
APP_PARSER = "json.loads"  # what shared/usage/tally.py parses with: the ratio is printed against it too
Ingest = Callable[[Mapping[str, str], datetime], Any]


def app_ingest(env: Mapping[str, str], now: datetime) -> Any:
    """The app's ingest as the `gateway_logs` timer runs it, over the settings in `env`."""
    from shared import bootstrap
    from shared.config import Settings

    logs = bootstrap.gateway_logs(Settings.from_env(env), env)
    assert logs is not None, "the benchmark sets GATEWAY_LOGS_STORAGE"
    return logs.ingest(now)


INGEST: Ingest = app_ingest


def services() -> tuple[Service, ...]:
    """Three instances, 40 APIs of 5 operations (every fifth with an older revision, every fourth behind a backend entity,
    two open), 10 products of 4 APIs, 400 subscriptions of 250 users, 8 backends; traffic 5:3:2."""
    made = []
    for n, (name, weight) in enumerate((("apim-bench-weu", 5.0), ("apim-bench-neu", 3.0), ("apim-bench-us", 2.0))):
        rid = f"/subscriptions/6f0c3c1e-0000-4000-8000-00000000be4c/resourceGroups/rg-bench-{n}/providers/Microsoft.ApiManagement/service/{name}"
        backends = tuple(f"backend-{b}" for b in range(8))
        apis = tuple(Api(f"api-{a:02d}", tuple(f"{verb}-item-{a:02d}" for verb in ("get", "list", "create", "update", "delete")),
                         (1, 2) if a % 5 == 0 else (1,), backends[a % 8] if a % 4 == 0 else None, open=a in (38, 39)) for a in range(40))
        products = tuple(Product(f"product-{p}", tuple(f"api-{(p * 4 + i) % 40:02d}" for i in range(4))) for p in range(10))
        users = tuple(f"user-{u:03d}" for u in range(250))
        subs = tuple(Subscription(f"sub-{s:03d}", f"product-{s % 10}" if s % 7 else None, users[s % 250]) for s in range(400))
        made.append(Service(rid, apis, products, subs, users, backends, "West Europe", weight))
    return tuple(made)


def traffic(records: int = RECORDS) -> Traffic:
    return Traffic(services(), START, HOURS, records, unknown=(("api", "legacy-orders"), ("subscription", "retired-key"),
                                                                 ("product", "beta"), ("backend", "old-backend")))


# -- reading and parsing, in a process of their own ------------------------------------------------------------------


def blob_lines(container: ContainerClient, ahead: bool = False) -> Iterator[list[bytes]]:
    """Each blob in ranges of CHUNK bytes, cut at the last newline: the complete lines of each range (4 MiB in memory;
    up to three ranges with `ahead`, which downloads the next range on a thread while the caller works on this one)."""

    def ranges() -> Iterator[tuple[Any, int, int, bool]]:
        for blob in container.list_blobs():
            client, size = container.get_blob_client(blob.name), int(blob.size)
            for offset in range(0, size, CHUNK):  # Azurite answers 206 with nothing at offset == size: never ask past the end
                yield client, offset, min(CHUNK, size - offset), offset + CHUNK >= size

    def download(item: tuple[Any, int, int, bool]) -> tuple[bytes, bool]:
        client, offset, length, last = item
        return client.download_blob(offset=offset, length=length).readall(), last

    def downloads() -> Iterator[tuple[bytes, bool]]:
        """The ranges' bytes in order; with `ahead`, exactly one more range in flight (Executor.map would submit them all)."""
        items = ranges()
        if not ahead:
            yield from map(download, items)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = next(items, None)
            future = pool.submit(download, first) if first else None
            while future is not None:
                item = next(items, None)
                following = pool.submit(download, item) if item else None
                yield future.result()
                future = following

    rest = b""
    for data, last in downloads():
        data = rest + data
        end = data.rfind(b"\n") + 1
        rest = b"" if last else data[end:]
        if end:
            yield data[: end - 1].split(b"\n")


def parsers() -> dict[str, Callable[[bytes], Any]]:
    """json.loads, and the candidates that are installed. make bench installs them into `.bench-packages`, never into the
    virtualenv: azure-functions decodes Event Grid payloads with orjson whenever it can import it, and orjson refuses
    a lone surrogate that the standard library's json reads, so their presence would change what the app does."""
    import json
    import sys
    from pathlib import Path

    apart = str(Path(__file__).resolve().parent.parent / ".bench-packages")
    if apart not in sys.path:
        sys.path.append(apart)

    found: dict[str, Callable[[bytes], Any]] = {"json.loads": json.loads}
    try:
        import orjson

        found["orjson.loads"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        from bench.usage_parsers import DECODER

        found["msgspec.json.decode"] = msgspec.json.decode
        found["msgspec typed (Struct)"] = DECODER.decode
    except ImportError:
        pass
    return found


def rss_mb() -> float:
    """This process's peak resident memory, in MB. On Linux the high-water mark of its own address space (VmHWM):
    ru_maxrss would keep the parent's size across the spawn's exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux, bytes on macOS


def parse_alone(blob_connection: str, result: Any) -> None:
    """Child process: the read alone, then each parser over the same chunk's lines, timed apart."""
    base = rss_mb()
    container = BlobServiceClient.from_connection_string(blob_connection).get_container_client(CONTAINER)
    found = parsers()
    seconds, parsed = dict.fromkeys(found, 0.0), dict.fromkeys(found, 0)
    read, lines, size = 0.0, 0, 0
    chunks = blob_lines(container)
    while True:
        start = time.perf_counter()
        chunk = next(chunks, None)
        read += time.perf_counter() - start
        if chunk is None:
            break
        lines += len(chunk)
        size += sum(len(line) + 1 for line in chunk)
        for name, parse in found.items():
            ok, start = 0, time.perf_counter()
            for line in chunk:
                try:
                    parse(line)
                    ok += 1
                except ValueError:  # json's, orjson's and msgspec's errors are ValueErrors: a bad line
                    pass
            seconds[name] += time.perf_counter() - start
            parsed[name] += ok
    ends = {name: end_to_end(container, found[name]) for name in found if name != "msgspec.json.decode"}
    result.update(read=read, lines=lines, bytes=size, seconds=seconds, parsed=parsed, ends=ends, peak=rss_mb(), base=base)


def end_to_end(container: ContainerClient, parse: Callable[[bytes], Any]) -> float:
    """Lines per second of the read (the next range downloaded while this one is parsed) and `parse` together: the
    ceiling of an ingest that parses with it, before any counting or writing."""
    lines, start = 0, time.perf_counter()
    for chunk in blob_lines(container, ahead=True):
        for line in chunk:
            try:  # noqa: SIM105  # a context manager per line would weigh on the rate measured
                parse(line)
            except ValueError:
                pass
        lines += len(chunk)
    return lines / (time.perf_counter() - start)


@contextmanager
def counting_requests(counts: dict[str, int], ports: Mapping[int, str]) -> Iterator[None]:
    """Count every request the Azure clients send, by the service its port is (the app builds its own clients from the
    settings, so the count is taken under them, at the transport they all use)."""
    original = RequestsTransport.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        name = ports.get(urlsplit(request.url).port or 0, "other")
        counts[name] = counts.get(name, 0) + 1
        return original(self, request, **kwargs)

    RequestsTransport.send = send
    try:
        yield
    finally:
        RequestsTransport.send = original


def ingest_alone(env: dict[str, str], ports: dict[int, str], result: Any) -> None:
    """Child process: the app's ingest, timed, its requests counted. The settings are this process's environment, as
    the Functions host gives them (the ingest's store is the process-wide one)."""
    os.environ.update(env)
    base = rss_mb()
    counts: dict[str, int] = {}
    failures: list[str] = []
    with counting_requests(counts, ports):
        start = time.perf_counter()
        while True:  # a storage failure makes a run raise; the timer's next run resumes from the checkpoints, as here
            try:
                report = INGEST(env, NOW)
                break
            except AzureError as exc:
                failures.append(type(exc).__name__)
                if len(failures) > 5:
                    raise
        seconds = time.perf_counter() - start
    result.update(seconds=seconds, requests=counts, report=repr(report), peak=rss_mb(), base=base, failures=failures)


def _json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def stream_alone(env: dict[str, str], blob_connection: str, ports: dict[int, str], result: Any) -> None:
    """Child process: the stream route over the same records, into its own usage table; decoding and calls timed."""
    os.environ.update(env)
    from devtools.event_hubs import Sent, decode_batch
    from devtools.worker import indexed_function

    function = indexed_function("gateway_logs_stream")
    container = BlobServiceClient.from_connection_string(blob_connection).get_container_client(CONTAINER)
    counts: dict[str, int] = {}
    base, timed, records, calls = rss_mb(), 0.0, 0, 0
    sequences = [0] * STREAM_PARTITIONS
    batch: list[Sent] = []
    with counting_requests(counts, ports):
        def call() -> float:
            nonlocal calls
            partition = calls % STREAM_PARTITIONS
            events = [Sent(sequences[partition] + n, sent.body) for n, sent in enumerate(batch)]
            sequences[partition] += len(events)
            started = time.perf_counter()
            function(decode_batch(events, partition=str(partition)))
            calls += 1
            return time.perf_counter() - started
        for lines in blob_lines(container):
            # Azure Monitor's bodies are whole JSON: the generator's bad lines travel as events of their own, so that they
            # do not spoil the good records an envelope would hold with them (untimed).
            lines = [line for line in lines if line.strip()]
            for bad in [line for line in lines if not _json_object(line)]:
                batch.append(Sent(0, bad))
            lines = [line for line in lines if _json_object(line)]
            for at in range(0, len(lines), STREAM_RECORDS):
                batch.append(Sent(0, b'{"records":[' + b",".join(lines[at:at + STREAM_RECORDS]) + b"]}"))
                records += len(lines[at:at + STREAM_RECORDS])
                if len(batch) >= STREAM_EVENTS:
                    timed += call()
                    batch = []
        if batch:
            timed += call()
    result.update(seconds=timed, records=records, calls=calls, requests=counts, peak=rss_mb(), base=base)


def in_child(target: Callable[..., None], *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")  # a fresh process: its peak memory is its own
    with context.Manager() as manager:
        result = manager.dict()
        process = context.Process(target=target, args=(*args, result))
        process.start()
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"{target.__name__} failed with exit code {process.exitcode}")
        return dict(result)


# -- the run ---------------------------------------------------------------------------------------------------------


def generate(azurite: Azurite) -> tuple[Truth, float, int, int, int]:
    blobs = BlobServiceClient.from_connection_string(azurite.blob_connection_string)
    generator = Generator(traffic())
    written = write_lines(blobs, CONTAINER, generator.lines(), flush_seconds=300)
    return generator.truth, written.seconds, written.bytes, written.appends, len(written.blobs)


def main() -> int:
    location = Path(tempfile.mkdtemp(prefix="usage-bench-"))
    try:
        with Azurite(location=location, blob=True) as azurite:
            print(f"usage benchmark: {RECORDS:,} records (BENCH_SCALE={SCALE:g}) over {HOURS} hours, {len(services())} services")
            truth, gen_seconds, size, appends, blobs = generate(azurite)
            bad = sum(truth.bad.values())
            print(f"  generated into Azurite append blobs: {gen_seconds:.1f} s ({RECORDS / gen_seconds:,.0f} records/s, not timed below); "
                  f"{size / 2**20:,.0f} MiB in {blobs} blobs, {appends:,} appends; {bad} bad lines; "
                  f"{truth.late:,} records in a later hour's blob; {truth.pairs:,} distinct hour x resource pairs")
            parsed = in_child(parse_alone, azurite.blob_connection_string)
            print(f"  read alone (4 MiB ranges, split into lines): {parsed['lines'] / parsed['read']:,.0f} lines/s, "
                  f"{parsed['bytes'] / 2**20 / parsed['read']:,.0f} MiB/s; "
                  f"peak RSS {parsed['peak']:.0f} MB ({parsed['peak'] - parsed['base']:.0f} MB above start)")
            json_rate = parsed["parsed"]["json.loads"] / parsed["seconds"]["json.loads"]
            for name, seconds in parsed["seconds"].items():
                rate = parsed["parsed"][name] / seconds
                print(f"  parse alone, {name:<24}{rate:>12,.0f} records/s  ({rate / json_rate:4.2f} x json.loads; {parsed['parsed'][name]:,} parsed)")
            for name, rate in parsed["ends"].items():
                print(f"  read ahead + {name:<24}{rate:>11,.0f} lines/s    ({rate / json_rate:4.2f} x json.loads alone: an ingest's ceiling with it)")
            chosen = parsed["parsed"][APP_PARSER] / parsed["seconds"][APP_PARSER]
            return report_ingest(azurite, truth, json_rate, chosen)
    finally:
        shutil.rmtree(location, ignore_errors=True)


def report_ingest(azurite: Azurite, truth: Truth, json_rate: float, chosen_rate: float) -> int:
    env = {"INVENTORY_STORAGE": azurite.connection_string, "GATEWAY_LOGS_STORAGE": azurite.blob_connection_string,
           "GATEWAY_LOGS_CONTAINER": CONTAINER}
    ran = in_child(ingest_alone, env, {azurite.port: "table", azurite.blob_port: "blob"})
    rate = truth.records / ran["seconds"]
    table = ran["requests"].get("table", 0)
    verdict = "ok" if rate / json_rate >= GOAL_RATIO else "MISSED"
    print(f"  the app's ingest: {rate:,.0f} records/s ({ran['seconds']:.1f} s); ratio to json.loads {rate / json_rate:.2f} "
          f"(goal >= {GOAL_RATIO}: {verdict}); ratio to the app's parser alone ({APP_PARSER}) {rate / chosen_rate:.2f}")
    print(f"  Table requests: {table:,} = {1000 * table / truth.records:.2f} per 1,000 records, {table / truth.pairs:.3f} per hour x resource pair; "
          f"Blob requests: {ran['requests'].get('blob', 0):,}")
    print(f"  peak RSS {ran['peak']:.0f} MB ({ran['peak'] - ran['base']:.0f} MB above start); report: {ran['report']}")
    if ran["failures"]:
        print(f"  runs that raised on a storage failure and were run again, as the timer would: {', '.join(ran['failures'])}")
    streamed = in_child(stream_alone, {"INVENTORY_STORAGE": azurite.connection_string, "INVENTORY_USAGE_TABLE": "UsageStreamBench",
                                       "GATEWAY_LOGS_EVENTHUB": CONTAINER}, azurite.blob_connection_string,
                        {azurite.port: "table", azurite.blob_port: "blob"})
    stream_rate = streamed["records"] / streamed["seconds"]
    print(f"  the stream route: {stream_rate:,.0f} records/s ({streamed['seconds']:.1f} s of decoding and calls, {streamed['calls']:,} calls "
          f"of {STREAM_EVENTS} events of {STREAM_RECORDS} records over {STREAM_PARTITIONS} partitions, one process); "
          f"{stream_rate / rate:.2f} x the archive route; Table requests {streamed['requests'].get('table', 0):,}; "
          f"peak RSS {streamed['peak']:.0f} MB")
    return 0  # a missed goal is printed, as the other benchmarks print theirs: make bench goes on


if __name__ == "__main__":
    raise SystemExit(main())
