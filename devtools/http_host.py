"""Serve the indexed app's HTTP functions on 127.0.0.1 the way the Functions host does, without the Core Tools.

Routes, methods and auth levels come from the indexed app (`get_functions()`, once, as the worker does) and host.json's
routePrefix. Keys are checked as the host's AuthenticationLevelHandler does (azure-functions-host,
src/WebJobs.Script.WebHost/Security/Authentication/Keys/AuthenticationLevelHandler.cs): the key is the first
`x-functions-key` header, else the first `code` query parameter (the header wins); the master key gives the admin level,
a host function key the function level, anything else anonymous; a FUNCTION route wants function level or above, an
ADMIN route the master key; a refusal is 401 with no body. Requests and answers go through azure.functions.HttpRequest
and HttpResponse; a function that raises gets 500, as on the host, with its traceback on stderr.

`sign_in_as` plays App Service Authentication locally: every request under ui/ carries an X-MS-CLIENT-PRINCIPAL with
that app role (and any such header sent from outside is dropped, as the platform drops it). Without it, headers pass
as sent, so tests can send their own principal."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import secrets
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

from devtools.azurite import ROOT
from devtools.local_server import ServedInThread
from devtools.worker import http_functions
from shared.domain.personal import Role
from shared.entrypoints.signin import PRINCIPAL_HEADER

LEVELS = {"ANONYMOUS": 0, "FUNCTION": 1, "ADMIN": 2}
KEY_HEADER, KEY_PARAM = "x-functions-key", "code"
LOCAL_USER = "local user (make serve: sign-in played locally)"
_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\??)\}")


@dataclass(frozen=True)
class Keys:
    """The host's keys: the master key (admin level) and one host function key named `default`."""

    master: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    default: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def level(self, key: str | None) -> int:
        if not key:
            return LEVELS["ANONYMOUS"]
        if hmac.compare_digest(key.encode(), self.master.encode()):
            return LEVELS["ADMIN"]
        return LEVELS["FUNCTION"] if hmac.compare_digest(key.encode(), self.default.encode()) else LEVELS["ANONYMOUS"]

    @classmethod
    def kept_in(cls, path: Path) -> Keys:
        """The keys in `path`, made there on first use: they stay the same across restarts, as the host's do."""
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            return cls(saved["master"], saved["default"])
        keys = cls()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"master": keys.master, "default": keys.default}), encoding="utf-8")
        path.chmod(0o600)
        return keys


@dataclass(frozen=True)
class HttpRoute:
    name: str
    template: str  # with the route prefix
    pattern: re.Pattern[str]
    methods: frozenset[str]
    level: int
    call: Callable[[func.HttpRequest], func.HttpResponse]


def route_prefix(host_json: Path = ROOT / "host.json") -> str:
    document = json.loads(host_json.read_text(encoding="utf-8"))
    return str(document.get("extensions", {}).get("http", {}).get("routePrefix", "api")).strip("/")


def compile_route(template: str) -> re.Pattern[str]:
    """A route template (`inventory/{kind}`, `{*rest}`, `{id?}`) as a pattern over the URL path, case-insensitive."""
    out, last = "", 0
    for m in _PARAM.finditer(template):
        out += re.escape(template[last:m.start()])
        catch_all, name, optional = m.groups()
        body = f"(?P<{name}>.*)" if catch_all else f"(?P<{name}>[^/]+)"
        if optional and out.endswith("/"):
            out, body = out[:-1], f"(?:/{body})?"
        out += body
        last = m.end()
    return re.compile(out + re.escape(template[last:]), re.IGNORECASE)


def routes(app: Any = None, prefix: str | None = None) -> list[HttpRoute]:
    """The indexed app's HTTP routes, literal ones first (as the host's router prefers them)."""
    prefix = route_prefix() if prefix is None else prefix
    found = []
    for name, trigger, call in http_functions(app):
        template = "/".join(p for p in (prefix, trigger.get("route") or name) if p)
        methods = frozenset(m.upper() for m in trigger.get("methods") or ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"))
        found.append(HttpRoute(name, template, compile_route(template), methods, LEVELS[str(trigger.get("authLevel", "FUNCTION")).upper()], call))
    return sorted(found, key=lambda r: (r.template.count("{"), r.template))


def local_principal(role: Role) -> str:
    claims = [{"typ": "name", "val": LOCAL_USER}, {"typ": "roles", "val": role.value}]
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")


class FunctionsHost(ServedInThread):
    """`with FunctionsHost(port=0) as host:` serves until the block ends; `host.url` and `host.keys` say where and how."""
    _thread_name, _poll = "functions-host", 0.1

    def __init__(self, *, port: int = 0, keys: Keys | None = None, sign_in_as: Role | None = None, app: Any = None,
                 prefix: str | None = None) -> None:
        self.keys = keys or Keys()
        self.sign_in_as = sign_in_as
        self.routes = routes(app, prefix)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request, as the host would answer it: (status, headers, body)."""
        parts = urlsplit(target)
        path = unquote(parts.path).strip("/")
        query = parse_qsl(parts.query, keep_blank_values=True)
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is None or method.upper() not in route.methods:
                continue
            sent = list(headers)
            # The host takes the header when it is there (even empty), else the `code` parameter (any case, as ASP.NET reads it).
            header = next((v for k, v in sent if k.lower() == KEY_HEADER), None)
            key = header if header is not None else next((v for k, v in query if k.lower() == KEY_PARAM), None)
            if self.keys.level(key) < route.level:
                return 401, {}, b""
            if self.sign_in_as is not None:  # the platform's part: its own principal, never one from outside
                sent = [(k, v) for k, v in sent if not k.upper().startswith(PRINCIPAL_HEADER)]
                if route.template.lower().startswith("ui/"):
                    sent += [(PRINCIPAL_HEADER, local_principal(self.sign_in_as)), (PRINCIPAL_HEADER + "-NAME", LOCAL_USER)]
            params: dict[str, str] = {}
            for k, v in query:
                params.setdefault(k, v)  # the first of a repeated parameter
            request = func.HttpRequest(method.upper(), f"{self.url}{parts.path}" + (f"?{parts.query}" if parts.query else ""),
                                       headers=dict(sent), params=params,
                                       route_params={k: v for k, v in match.groupdict().items() if v is not None}, body=body)
            try:
                response = route.call(request)
            except Exception:
                logging.getLogger("apim_inventory.host").error("function %s raised:\n%s", route.name, traceback.format_exc())
                return 500, {}, b""
            answer = dict(response.headers)
            if response.mimetype:
                answer["Content-Type"] = response.mimetype + (f"; charset={response.charset}" if response.charset else "")
            return response.status_code, answer, response.get_body()
        return 404, {}, b""


def _handler(host: FunctionsHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = host.handle(self.command, self.path, self.headers.items(), body)
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:  # one line per request, on stderr, when asked for
            if host_logging[0]:
                super().log_message(format, *args)

    return Handler


host_logging = [False]  # make serve turns the access log on
