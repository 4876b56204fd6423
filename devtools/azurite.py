"""Start Azurite's Table (and Blob) service on a free loopback port and stop it by its PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    """A free loopback port outside Azurite's defaults (10000-10002), which others may hold."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in (10000, 10001, 10002):
            return port


def binary(name: str = "azurite-table") -> str:
    path = ROOT / "node_modules" / ".bin" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `npm ci` (make does it)")
    return str(path)


@dataclass
class Azurite:
    """One Azurite table service, and with `blob=True` its Blob service too, in the same process (each
    service on a free loopback port). `location=None` keeps data in memory."""

    location: Path | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _log: Path | None = None
    blob: bool = False
    blob_port: int = 0
    queue_port: int = 0  # the all-in-one binary always serves Queue too: on a free port, never 10001

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"TableEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    @property
    def blob_connection_string(self) -> str:
        if not self.blob:
            raise RuntimeError("this Azurite was started without blob=True")
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{ACCOUNT};"
        )

    def _ports(self) -> list[int]:
        return [self.port, self.blob_port] if self.blob else [self.port]

    def start(self, timeout: float = 30.0) -> Azurite:
        args = [binary(), "--tableHost", "127.0.0.1", "--tablePort", str(self.port), "--disableTelemetry", "--silent",
                "--skipApiVersionCheck"]
        if self.blob:
            while len({self.port, self.blob_port, self.queue_port}) < 3 or 0 in (self.blob_port, self.queue_port):
                self.blob_port, self.queue_port = free_port(), free_port()
            args = [binary("azurite"), *args[1:], "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
                    "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port)]
        args += ["--location", str(self.location)] if self.location else ["--inMemoryPersistence"]
        fd, log = tempfile.mkstemp(prefix="azurite-", suffix=".log")
        self._log = Path(log)
        self.process = subprocess.Popen(args, stdout=fd, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True)
        os.close(fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"azurite exited with {self.process.returncode}: {self._log.read_text()[-2000:]}")
            try:
                for port in self._ports():
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        pass
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"azurite did not open ports {self._ports()} in {timeout}s")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> None:
        """SIGINT lets a --location Azurite save its data; SIGTERM and SIGKILL lose the last 5 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self._log and self._log.exists():
            self._log.unlink()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def node_available() -> bool:
    return shutil.which("node") is not None
