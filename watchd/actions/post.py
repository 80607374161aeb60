"""The post action: an HTTP request per batch (Prometheus' /-/reload, a sidecar's reload URL).

Standard library only (http.client): `https` verifies with the system's trust store. Success is
a 2xx answer; a connection error or a 5xx answer is tried again after 0.5 s, 1 s, 2 s ... up to
`tries` attempts in all; a 4xx answer is final. A redirect is followed only when it keeps the
method and body (307, 308) and stays on the same scheme, host and port: a reload request is never
sent somewhere else, nor turned into a GET. The changed paths never go into the URL: with
`body: changes` they are a JSON body (the batch's WATCHD_* information, every path).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from watchd import __version__
from watchd.actions import Context, PerBatch
from watchd.changes import Batch
from watchd.logtext import shown_url, took
from watchd.model import Body, OnBusy, PostSettings
from watchd.outcome import Outcome, Result

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
MAX_READ = 64 * 1024  # of an answer's body: only its first line is logged
FIRST_BACKOFF = 0.5  # seconds before the second try; doubles


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    first_line: str  # of the body, for the log


class RequestFailed(Exception):
    """The request could not be made or answered (connection refused, timeout, TLS, redirect)."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final  # trying again cannot help (a redirect elsewhere)


def changes_body(batch: Batch) -> bytes:
    """The batch as JSON: what the WATCHD_* variables say to a command, with every path."""
    paths = batch.paths
    document = {
        "watch": batch.watch,
        "count": len(paths),
        "path": paths[0] if paths else "",
        "paths": list(paths),
        "changes": [
            {"kind": c.kind.value, "path": c.path, "dest": c.dest, "is_dir": c.is_dir} for c in batch.changes
        ],
    }
    # file names can hold any byte but / and NUL: undecodable ones travel as \udcXX escapes
    return json.dumps(document, ensure_ascii=True).encode("ascii")


class PostAction(PerBatch):
    """The post action."""

    not_done = "request not sent"
    on_busy = OnBusy.QUEUE  # changes during a request: one more request afterwards, with them

    def __init__(self, action: PostSettings, ctx: Context) -> None:
        self.name = ctx.name
        self.action = action
        self.base = ctx.base
        self.dry_run = ctx.dry_run
        self.grace = action.timeout
        self.shown = f"{action.method} {shown_url(action.url)}"
        self._context: ssl.SSLContext | None = None

    # close: a request under way ends with its timeout; retries stop on the worker's cancel event

    def execute(self, batch: Batch, cancel: threading.Event) -> str | None:
        changed = batch.what(self.base)
        if self.dry_run:
            log.info("%s: %s; would send %s [dry run]", self.name, changed, self.shown)
            return f"would send {self.shown}"
        body = changes_body(batch) if self.action.body is Body.CHANGES else b""
        started = time.monotonic()
        delay = FIRST_BACKOFF
        tries = 0
        problem = ""
        while True:
            tries += 1
            try:
                answer = self.send(body)
            except RequestFailed as exc:
                problem, final = str(exc), exc.final
            else:
                if 200 <= answer.status < 300:
                    sent = Outcome(f"{self.shown}: {answer.status} {answer.reason}")
                    log.info(
                        "%s: %s; %s: %d %s in %s%s",
                        self.name,
                        changed,
                        self.shown,
                        answer.status,
                        answer.reason,
                        took(time.monotonic() - started),
                        f" ({tries} tries; before: {problem})" if tries > 1 else "",
                        extra=sent.log,
                    )
                    return sent
                problem = f"{answer.status} {answer.reason}"
                if answer.first_line:
                    problem += f": {answer.first_line}"
                final = answer.status < 500
            if final or tries >= self.action.tries or cancel.wait(delay):
                break
            delay *= 2
        failed = Outcome(f"{self.shown} failed", Result.FAILED)
        log.error(
            "%s: %s; %s failed after %s in %s: %s",
            self.name,
            changed,
            self.shown,
            "1 try" if tries == 1 else f"{tries} tries",
            took(time.monotonic() - started),
            problem,
            extra=failed.log,
        )
        return failed

    # ------------------------------------------------------------------ one request

    def send(self, body: bytes) -> Answer:
        """One attempt, following same-origin 307/308 redirects."""
        url = self.action.url
        for _ in range(MAX_REDIRECTS + 1):
            answer, location = self._request(url, body)
            if location is None:
                return answer
            target = urljoin(url, location)
            if not _same_origin(url, target):
                raise RequestFailed(
                    f"{answer.status} {answer.reason}: redirected to {shown_url(target)}, another host "
                    "(not followed: put that URL in the config)",
                    final=True,
                )
            url = target
        raise RequestFailed(f"more than {MAX_REDIRECTS} redirects", final=True)

    def _request(self, url: str, body: bytes) -> tuple[Answer, str | None]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            if self._context is None:
                self._context = ssl.create_default_context()  # the system's trust store
            conn = http.client.HTTPSConnection(
                host, parts.port, timeout=self.action.timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(host, parts.port, timeout=self.action.timeout)
        headers = {"User-Agent": f"watchd/{__version__}", "Accept": "*/*"}
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode("ascii")
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(dict(self.action.headers))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(self.action.method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(MAX_READ)
        except (OSError, http.client.HTTPException) as exc:
            raise RequestFailed(_why(exc)) from None
        finally:
            conn.close()
        text = data.decode("utf-8", "replace").strip()
        answer = Answer(response.status, response.reason, text.splitlines()[0][:200] if text else "")
        if 300 <= response.status < 400:
            location = response.getheader("Location")
            if response.status in (307, 308) and location:
                return answer, location
            where = f" to {location}" if location else ""
            raise RequestFailed(
                f"{response.status} {response.reason}: redirected{where} (not followed: only 307 and 308 "
                "keep the method; put the final URL in the config)",
                final=True,
            )
        return answer, None


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    port_a = pa.port or (443 if pa.scheme == "https" else 80)
    port_b = pb.port or (443 if pb.scheme == "https" else 80)
    return (pa.scheme, pa.hostname, port_a) == (pb.scheme, pb.hostname, port_b)


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, on that port?)"
    if isinstance(exc, OSError) and exc.strerror:
        return (
            exc.strerror.lower()
            if exc.strerror[0].isupper() and not exc.strerror[1:2].isupper()
            else exc.strerror
        )
    return str(exc) or type(exc).__name__
