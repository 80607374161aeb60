"""Real gunicorn and uWSGI servers for end-to-end tests: 127.0.0.1, ephemeral port, own process group."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from helpers.procs import stop_process, wait_for, wait_workers_settled

BIN = Path(sys.executable).parent

APP = """VERSION = "{version}"


def app(environ, start_response):
    body = VERSION.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def write_app(app_dir: Path, version: str) -> None:
    (app_dir / "app.py").write_text(APP.format(version=version))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """gunicorn or uWSGI serving tests' `app.py` (or `module`) with 2 workers, a pidfile and a log."""

    def __init__(self, kind: str, app_dir: Path, pidfile: Path, log: Path, module: str | None = None) -> None:
        self.kind = kind
        self.app_dir = app_dir
        self.pidfile = pidfile
        self.log_path = log
        self.port = free_port()
        if kind == "gunicorn":
            argv = [
                str(BIN / "gunicorn"),
                "--pid", str(pidfile),
                "--no-control-socket",
                "--chdir", str(app_dir),
                "--workers", "2",
                "--graceful-timeout", "5",
                "--bind", f"127.0.0.1:{self.port}",
                module or "app:app",
            ]  # fmt: skip
        else:
            argv = [
                str(BIN / "uwsgi"),
                "--master",
                "--pidfile", str(pidfile),
                "--die-on-term",
                "--http-socket", f"127.0.0.1:{self.port}",
                "--chdir", str(app_dir),
                *(
                    ["--module", module, "--virtualenv", sys.prefix]
                    if module
                    else ["--wsgi-file", "app.py", "--callable", "app"]
                ),
                "--processes", "2",
                "--worker-reload-mercy", "5",
            ]  # fmt: skip
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if not wait_for(lambda: self.get() is not None, timeout=20):
            self.stop()
            raise RuntimeError(f"{kind} did not start:\n{self.log()}")

    def wait_settled(self) -> None:
        """Until both workers have run long enough to count as workers for reload confirmation
        (a test's first save then finds the server at rest, not still starting its workers)."""
        if not wait_workers_settled(self.master_pid(), 2, timeout=15):
            raise RuntimeError(f"{self.kind} workers did not settle:\n{self.log()}")

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def get(self, timeout: float = 2.0) -> str | None:
        return http_get(self.port, timeout)

    def master_pid(self) -> int:
        """The PID in the pidfile; gunicorn rewrites it on every HUP, so wait for one to be there."""

        def read() -> str:
            try:
                return self.pidfile.read_text().strip()
            except FileNotFoundError:
                return ""

        if not wait_for(read, timeout=5):
            raise AssertionError(f"no pidfile {self.pidfile}")
        return int(read())

    def log(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def reloads(self) -> int:
        """How many graceful reloads the server itself logged."""
        marker = "Handling signal: hup" if self.kind == "gunicorn" else "gracefully (RE)spawned uWSGI master"
        return self.log().count(marker)

    def kill_hard(self) -> None:
        """SIGKILL the whole group: the pidfile stays behind, naming a dead PID."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None or _group_alive(self.proc.pid):
            stop_process(self.proc, signal.SIGINT if self.kind == "uwsgi" else signal.SIGTERM, timeout=10)
            if _group_alive(self.proc.pid):  # e.g. a gunicorn master started by USR2
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Poller:
    """A client polling a server throughout a test, every `interval`; counts failed requests."""

    def __init__(self, get: Callable[[], str | None], interval: float = 0.01) -> None:
        self.get = get
        self.interval = interval
        self.ok = 0
        self.failed: list[str] = []
        self.bodies: set[str] = set()
        self.slowest = 0.0  # the longest a request took, in seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            sent = time.monotonic()
            body = self.get()
            self.slowest = max(self.slowest, time.monotonic() - sent)
            if body is None:
                self.failed.append(f"request failed at {time.monotonic():.3f}")
            else:
                self.ok += 1
                self.bodies.add(body)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def http_get(port: int, timeout: float = 5.0) -> str | None:
    """GET / on 127.0.0.1:`port` (a new connection each time); the body, or None if it failed."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as r:
            if r.status != 200:
                return None
            return str(r.read().decode())
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return None


def listening_port(log: str) -> int:
    """The port watchd bound for `--listen 127.0.0.1:0`, from its log."""
    found = re.findall(r"listening on 127\.0\.0\.1:(\d+)", log)
    if not found:
        raise AssertionError(f"watchd logged no listening port:\n{log}")
    return int(found[0])
