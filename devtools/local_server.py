"""A local HTTP server run on a thread of its own (the ARM stand-in, the local Functions host): one start, stop and
`with` for both."""

from __future__ import annotations

import threading
from http.server import HTTPServer
from typing import Self


class ServedInThread:
    """Subclasses set `_server` in their constructor (and `_thread_name`, `_poll` if they like)."""

    _server: HTTPServer
    _thread_name = "local-server"
    _poll = 0.1  # seconds between the server's looks at a shutdown request

    _thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, args=(self._poll,), name=self._thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
