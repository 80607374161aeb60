"""A real HTTP server on 127.0.0.1 (an ephemeral port) for the post action's tests: it answers
from a script of responses and records every request it gets."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok\n"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before answering (a slow server)
    hold: threading.Event | None = None  # answer only once this is set (bounded by the server's stop)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ReloadServer:
    """Answers the scripted replies in order, then `default` for ever."""

    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=Reply)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    tls: tuple[str, str] | None = None  # (certificate, key) files: serve https
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/-/reload") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies.pop(0) if self.replies else self.default

    def count(self, method: str = "POST") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.method == method)


@contextmanager
def serving(server: ReloadServer) -> Iterator[ReloadServer]:
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            reply = server.next_reply(Request(self.command, self.path, dict(self.headers.items()), body))
            if reply.delay:
                stop.wait(reply.delay)
            if reply.hold is not None:
                while not reply.hold.wait(0.05) and not stop.is_set():
                    pass
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_POST = do_PUT = do_GET = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if server.tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*server.tls)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
