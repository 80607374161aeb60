"""The post action against a real HTTP server on loopback: success, retries, final answers,
redirects, headers, the JSON body and timeouts."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers.clock import Clock, ClockedStop
from helpers.http import ReloadServer, Reply, Request, serving

from watchd.actions import Context, post
from watchd.actions.post import PostAction
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import Body, PostSettings
from watchd.outcome import Result, result_of


def poster(url: str, **kw: object) -> PostAction:
    return PostAction(PostSettings(url=url, **kw), Context(name="reload"))  # type: ignore[arg-type]


def batch(*paths: str) -> Batch:
    return Batch("reload", tuple(Change(ChangeKind.MODIFIED, p) for p in paths), 0.0, 0.0)


def test_a_2xx_answer_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serving(ReloadServer()) as server:
        outcome = poster(server.url()).execute(batch("/etc/app/app.yaml"), threading.Event())
        assert outcome == f"POST {server.url()}: 200 OK"
        assert result_of(outcome) is Result.OK
        (req,) = server.requests
    assert (req.method, req.path, req.body) == ("POST", "/-/reload", b"")
    assert req.headers["User-Agent"].startswith("watchd/")
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"reload: /etc/app/app.yaml changed; POST {server.url()}: 200 OK in ")


def test_5xx_and_connection_errors_are_tried_again_with_backoff(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    monkeypatch.setattr(post, "time", clock)  # the poster's monotonic(), for the time it logs
    with serving(ReloadServer([Reply(503, b"starting\n"), Reply(500, b"boom\n")])) as server:
        assert poster(server.url()).execute(batch("/a"), ClockedStop(clock)) == f"POST {server.url()}: 200 OK"
    assert server.count() == 3
    assert clock.waits == [0.5, 1.0]  # the two waits before the second and third tries
    assert "200 OK in 1.5" in caplog.records[-1].getMessage()
    assert "(3 tries; before: 500 Internal Server Error: boom)" in caplog.records[-1].getMessage()


def test_the_last_failure_is_logged_with_the_first_line_of_the_body(caplog: pytest.LogCaptureFixture) -> None:
    body = b"failed to reload config: couldn't load configuration (--config.file=x.yml)\ndetails\n"
    with serving(ReloadServer(default=Reply(500, body))) as server:
        outcome = poster(server.url(), tries=2).execute(batch("/a"), threading.Event())
    assert outcome is not None
    assert server.count() == 2
    message = caplog.records[-1].getMessage()
    assert caplog.records[-1].levelno == logging.ERROR
    assert message.startswith(f"reload: /a changed; POST {server.url()} failed after 2 tries in ")
    first_line = body.decode().splitlines()[0]
    assert message.endswith(f": 500 Internal Server Error: {first_line}")


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_4xx_answer_is_final(status: int, caplog: pytest.LogCaptureFixture) -> None:
    with serving(ReloadServer(default=Reply(status, b"no\n"))) as server:
        assert poster(server.url()).execute(batch("/a"), threading.Event()) is not None
    assert server.count() == 1
    assert "failed after 1 try" in caplog.records[-1].getMessage()


def test_a_refused_connection_is_tried_again_then_logged(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    outcome = poster(f"http://127.0.0.1:{port}/-/reload", tries=2).execute(batch("/a"), threading.Event())
    assert outcome is not None
    assert "failed after 2 tries" in caplog.records[-1].getMessage()
    assert "connection refused" in caplog.records[-1].getMessage()


def test_a_timeout_is_an_error_not_a_hang(caplog: pytest.LogCaptureFixture) -> None:
    # the server answers only when the test leaves `serving`: without the timeout this would hang
    # (until pytest's timeout fails it), and the answer would be a 200
    with serving(ReloadServer(default=Reply(200, delay=3600))) as server:
        outcome = poster(server.url(), timeout=0.3, tries=1).execute(batch("/a"), threading.Event())
    assert outcome is not None
    assert "timed out" in caplog.records[-1].getMessage()


def test_stopping_ends_the_retries() -> None:
    clock = Clock()
    stop = ClockedStop(clock)

    class StopsAtTheFirstRequest(ReloadServer):
        def next_reply(self, request: Request) -> Reply:
            stop.set()  # watchd is stopping while the first try is under way
            return super().next_reply(request)

    with serving(StopsAtTheFirstRequest(default=Reply(500))) as server:
        assert poster(server.url(), tries=10).execute(batch("/a"), stop) is not None
    assert server.count() == 1
    assert clock.waits == []  # the wait before the second try saw the stop: no more tries


def test_a_307_on_the_same_host_is_followed_with_method_and_body() -> None:
    with serving(ReloadServer()) as server:
        server.replies.append(Reply(307, b"", (("Location", "/api/reload"),)))
        poster(server.url(), body=Body.CHANGES).execute(batch("/a"), threading.Event())
    first, second = server.requests
    assert (second.method, second.path) == ("POST", "/api/reload")
    assert second.body == first.body != b""


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply(307, b"", (("Location", "http://198.51.100.7/-/reload"),)), "another host"),
        (Reply(302, b"", (("Location", "/elsewhere"),)), "only 307 and 308 keep the method"),
    ],
)
def test_a_redirect_elsewhere_or_one_that_would_change_the_method_is_not_followed(
    reply: Reply, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(ReloadServer([reply])) as server:
        assert poster(server.url()).execute(batch("/a"), threading.Event()) is not None
    assert server.count() == 1  # final: not tried again, never sent elsewhere
    assert why in caplog.records[-1].getMessage()


def test_method_headers_and_user_from_the_url() -> None:
    with serving(ReloadServer()) as server:
        url = f"http://ops:s%3Acret@127.0.0.1:{server.port}/reload?now=1"
        p = poster(url, method="PUT", headers=(("X-Token", "abc"),))
        assert p.shown == f"PUT http://ops:***@127.0.0.1:{server.port}/reload?now=1"  # never the password
        p.execute(batch("/a"), threading.Event())
    (req,) = server.requests
    assert (req.method, req.path) == ("PUT", "/reload?now=1")
    assert req.headers["X-Token"] == "abc"
    assert req.headers["Authorization"] == "Basic b3BzOnM6Y3JldA=="  # ops:s:cret


def test_the_changes_go_in_a_json_body_never_in_the_url(tmp_path: Path) -> None:
    odd = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9 &x=1?.yaml")  # not UTF-8, and URL-ish
    with serving(ReloadServer()) as server:
        poster(server.url(), body=Body.CHANGES).execute(batch(odd, "/etc/b.yaml"), threading.Event())
    (req,) = server.requests
    assert req.path == "/-/reload"
    assert req.headers["Content-Type"] == "application/json"
    doc = json.loads(req.body)
    assert doc["watch"] == "reload" and doc["count"] == 2
    assert doc["paths"] == [odd, "/etc/b.yaml"]  # (the undecodable byte as a \udcXX escape)
    assert doc["changes"][0] == {"kind": "modified", "path": odd, "dest": None, "is_dir": False}


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl), as (certificate, key) files."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


def test_https_is_verified_against_the_system_trust_store(
    certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(ReloadServer(tls=certificate)) as server:
        # a certificate nobody vouches for: refused, and not tried again
        failed = poster(server.url(), tries=1).execute(batch("/a"), threading.Event())
        assert failed is not None and result_of(failed) is Result.FAILED
        assert "TLS certificate not trusted" in caplog.records[-1].getMessage()
        assert server.count() == 0
        # the same server once the trust store (here OpenSSL's SSL_CERT_FILE) holds it
        monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
        assert result_of(poster(server.url()).execute(batch("/a"), threading.Event()) or "") is Result.OK
        assert server.count() == 1


def test_changes_during_a_request_make_one_more_request_afterwards() -> None:
    """A batch that arrives while the request is under way waits for it (the post action queues,
    as commands do by default), then goes out in a request of its own, with its changes."""
    from helpers.procs import wait_for  # noqa: PLC0415

    from watchd.worker import WatchWorker  # noqa: PLC0415

    hold = threading.Event()
    with serving(ReloadServer([Reply(hold=hold)])) as server:
        worker = WatchWorker("reload")
        worker.attach(poster(server.url(), body=Body.CHANGES))
        worker.start()
        try:
            worker.submit(batch("/etc/app/first.yaml"))
            assert wait_for(lambda: server.count() == 1, timeout=10)  # the first request is held
            worker.submit(batch("/etc/app/second.yaml"))  # busy: queued behind it
            hold.set()
            assert wait_for(lambda: server.count() == 2, timeout=10)
            assert worker.wait_idle(10)
        finally:
            hold.set()
            assert worker.close(time.monotonic() + 10)
        bodies = [json.loads(r.body) for r in server.requests]
    assert [[c["path"] for c in b["changes"]] for b in bodies] == [
        ["/etc/app/first.yaml"],
        ["/etc/app/second.yaml"],
    ]
