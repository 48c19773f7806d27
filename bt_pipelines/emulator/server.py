"""The HTTP transport: keep-alive HTTP/1.1 on loopback, gzip, and the faults that need a socket."""

from __future__ import annotations

import gzip
import logging
import secrets
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from .api import ApiError, EmulatorApp, Request, Response
from .btql import QueryError, parse_query
from .faults import Decision, Faults
from .seed import seed_bulk, seed_demo
from .store import Store

log = logging.getLogger(__name__)
_GZIP_MIN_BYTES = 1024
_BLOB_PREFIX = "/blobs/"
DEFAULT_API_KEY = "sk-emulator-local-key"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.headers.get("content-encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _serve(self) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        if url.path.startswith(_BLOB_PREFIX):
            self._read_body()
            return self._send(self.server.take_blob(url.path, self.headers), Decision())
        request = Request(self.command, url.path, parse_qs(url.query),
                          {k.lower(): v for k, v in self.headers.items()}, self._read_body())
        limit = _requested_limit(request) if app.faults.faults.heavy_limit_above else None
        decision = app.faults.decide(url.path, limit)
        request.stale_tail = decision.stale_tail
        if decision.latency_s:
            time.sleep(decision.latency_s)
        rows = 0
        if decision.status:
            response = _error(decision.status, "injected fault: try again later" if decision.status == 429
                              else "injected fault: the page is too heavy, ask for fewer rows")
            if decision.retry_after:
                response.headers["Retry-After"] = decision.retry_after
        else:
            try:
                response = app.handle(request)
                rows = int(response.headers.pop("x-bt-row-count", 0))
            except ApiError as exc:
                response = _error(exc.status, exc.message)
                response.headers.update(exc.headers)
            except Exception as exc:  # a bug in the emulator is a 500, as a server would answer
                log.exception("emulator failed on %s %s", self.command, url.path)
                response = _error(500, f"internal error: {type(exc).__name__}: {exc}")
        app.stats.record(url.path, response.status, rows)
        if decision.redirect and response.status == 200:
            response = self.server.park_blob(response)
        self._send(response, decision)

    def _send(self, response: Response, decision: Decision) -> None:
        body = response.body
        if decision.truncate and body:
            body = body[: max(1, len(body) // 2)]
        gzipped = "gzip" in self.headers.get("accept-encoding", "") and len(body) >= _GZIP_MIN_BYTES
        if gzipped:
            body = gzip.compress(body, compresslevel=1, mtime=0)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if decision.reset:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        self.wfile.write(body)


def _requested_limit(request: Request) -> int | None:
    """The LIMIT a /btql query asks for, so heavy-page faults can key on it."""
    if request.path != "/btql" or not request.body:
        return None
    try:
        query = orjson.loads(request.body).get("query")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if isinstance(query, dict):
        limit = query.get("limit")
        return limit if isinstance(limit, int) else None
    if isinstance(query, str):
        try:
            return parse_query(query).limit
        except QueryError:
            return None
    return None


def _error(status: int, message: str) -> Response:
    return Response(status, message.encode(), "text/plain; charset=utf-8", {})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: EmulatorApp):
        super().__init__(address, _Handler)
        self.app = app
        self.blobs: dict[str, Response] = {}
        self.blob_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a timeout, a reset) is ordinary here; anything else is logged."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)

    def park_blob(self, response: Response) -> Response:
        """Keep an answer at a one-time URL, like a signed object-store URL, and point there."""
        token = secrets.token_urlsafe(16)
        with self.blob_lock:
            self.blobs[token] = response
        return Response(303, b"", "text/plain", {"Location": f"{self.app.url}{_BLOB_PREFIX}{token}"})

    def take_blob(self, path: str, headers: Any) -> Response:
        if headers.get("authorization"):  # signed URLs refuse extra credentials, as S3 does
            return _error(400, "a signed URL request must not carry an Authorization header")
        with self.blob_lock:
            found = self.blobs.pop(path.removeprefix(_BLOB_PREFIX), None)
        return found or _error(404, "no such blob (blob URLs work once)")


@dataclass
class RunningEmulator:
    """A started emulator: its URL and key, the store behind it, and admin helpers."""

    url: str
    api_key: str
    app: EmulatorApp
    server: _Server

    @property
    def store(self) -> Store:
        return self.app.store

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, **kwargs)

    def set_faults(self, **settings: Any) -> None:
        self.app.faults.configure(Faults.parse(settings))

    def clear_faults(self) -> None:
        self.app.faults.configure(Faults())

    def env(self) -> dict[str, str]:
        """Environment variables that point the official clients (and bt_pipelines) here."""
        return {"BRAINTRUST_API_URL": self.url, "BRAINTRUST_APP_URL": self.url,
                "BRAINTRUST_API_KEY": self.api_key, "BRAINTRUST_ORG_NAME": self.store.org_name}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_emulator(*, host: str = "127.0.0.1", port: int = 0, db: str = ":memory:",
                   seed: str = "none", api_key: str = DEFAULT_API_KEY, faults: Faults | None = None,
                   org_name: str = "demo-org", days: int = 14, spans: int = 0) -> RunningEmulator:
    """Start a server thread; port 0 picks a free port."""
    store = Store(db, org_name=org_name)
    if seed == "demo":
        seed_demo(store, days=days)
    elif seed != "none":
        raise ValueError(f"unknown seed {seed!r}: use demo or none")
    if spans:
        seed_bulk(store, spans=spans, days=days)
    app = EmulatorApp(store, api_key, faults)
    server = _Server((host, port), app)
    bound_host, bound_port = server.server_address[:2]
    app.url = f"http://{bound_host}:{bound_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), name="bt-emulator", daemon=True).start()
    return RunningEmulator(app.url, api_key, app, server)


@contextmanager
def emulator(**kwargs: Any) -> Iterator[RunningEmulator]:
    """`with emulator(seed="demo") as bt: ...` runs a Braintrust emulator for the block."""
    running = start_emulator(**kwargs)
    try:
        yield running
    finally:
        running.stop()
