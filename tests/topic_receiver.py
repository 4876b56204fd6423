"""A stand-in for an Event Grid custom topic on 127.0.0.1: it checks what azure-eventgrid's
publisher sends (path, SAS key header, content type, CloudEvents fields) and answers with
scripted status codes."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "test-topic-key"
REQUIRED = ("specversion", "id", "source", "type", "subject", "time", "data")


@dataclass
class TopicReceiver:
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    accepted: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.check(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/events"

    def check(self, path: str, headers: dict[str, str], body: bytes) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        if not path.startswith("/api/events"):
            self.problems.append(f"path {path}")
        if lowered.get("aeg-sas-key") != KEY:
            self.problems.append("missing or wrong aeg-sas-key")
        if not lowered.get("content-type", "").startswith("application/cloudevents-batch+json"):
            self.problems.append(f"content type {lowered.get('content-type')}")
        events = json.loads(body)
        if not isinstance(events, list):
            self.problems.append("body is not a JSON array")
            return
        for event in events:
            missing = [k for k in REQUIRED if k not in event]
            if missing or event.get("specversion") != "1.0":
                self.problems.append(f"event {event.get('id')} lacks {missing}")
            self.accepted.append(event)

    def types(self) -> list[str]:
        return [e["type"].removeprefix("ApimInventory.") for e in self.accepted]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
