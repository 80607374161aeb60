"""Run mode with the real frameworks whose reloaders watchd replaces: Flask (Werkzeug), Django's
runserver, uvicorn, Tornado, and a plain http.server script. Each app is a few lines written by
the test; servers listen on 127.0.0.1, on an ephemeral port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.apps import ASGI_APP, DJANGO_URLS, FLASK_APP, PLAIN_APP, TORNADO_APP, WERKZEUG_APP, save
from helpers.changes import write_sentinel
from helpers.procs import Watchd, wait_for
from helpers.servers import APP as WSGI_APP
from helpers.servers import Poller, free_port, http_get, listening_port

PY = sys.executable
BIN = Path(PY).parent
BROKEN = "\ndef broken(:\n"


@dataclass(frozen=True)
class Framework:
    name: str
    source: str  # the app's code, with {version}
    file: str  # the file that holds it, relative to the app's directory
    argv: Callable[[int], list[str]]  # how to run it on a port it binds itself
    setup: Callable[[Path], None] | None = None

    def write(self, app_dir: Path, version: str, *, broken: bool = False) -> None:
        save(app_dir / self.file, self.source.format(version=version) + (BROKEN if broken else ""))


def startproject(app_dir: Path) -> None:
    subprocess.run([PY, "-m", "django", "startproject", "mysite", str(app_dir)], check=True, timeout=60)


FRAMEWORKS = [
    Framework("plain", PLAIN_APP, "app.py", lambda port: [PY, "app.py"]),
    Framework(
        "flask",
        FLASK_APP,
        "app.py",
        lambda port: [str(BIN / "flask"), "--app", "app", "run", "--no-reload", "--port", str(port)],
    ),
    Framework(
        "django",
        DJANGO_URLS,
        "mysite/urls.py",
        lambda port: [PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        setup=startproject,
    ),
    Framework(
        "uvicorn", ASGI_APP, "app.py", lambda port: [str(BIN / "uvicorn"), "app:app", "--port", str(port)]
    ),
    Framework("tornado", TORNADO_APP, "app.py", lambda port: [PY, "app.py"]),
]


@pytest.fixture(params=FRAMEWORKS, ids=[f.name for f in FRAMEWORKS])
def framework(request: pytest.FixtureRequest) -> Framework:
    fw: Framework = request.param
    return fw


@pytest.fixture
def app_dir(tmp_path: Path, framework: Framework) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    if framework.setup is not None:
        framework.setup(d)
    return d


def start(start_watchd: type[Watchd], framework: Framework, app_dir: Path, port: int, *extra: str) -> Watchd:
    env = dict(os.environ, PORT=str(port), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("NOTIFY_SOCKET", None)
    return start_watchd(["-p", "*.py", *extra, "--", *framework.argv(port)], cwd=app_dir, env=env)


def test_an_edit_serves_the_new_code_within_3_s_with_one_restart_per_save(
    framework: Framework, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    framework.write(app_dir, "v1")
    w = start(start_watchd, framework, app_dir, port)
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=20), w.log()
    for i in (2, 3):
        framework.write(app_dir, f"v{i}")
        assert wait_for(lambda i=i: http_get(port, 1) == f"v{i}", timeout=3), w.log()
        assert w.wait_log("restarted", count=i - 1)
    # one restart per save: a change after them is the third restart, alone in its batch
    write_sentinel(app_dir / "sentinel.py")
    assert w.wait_log("sentinel.py changed; restarted", timeout=10), w.log()
    assert w.log().count("restarted") == 3, w.log()


def test_a_200_file_burst_is_one_restart(
    framework: Framework, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    framework.write(app_dir, "v1")
    (app_dir / "generated").mkdir()
    w = start(start_watchd, framework, app_dir, port)
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=20), w.log()
    for i in range(199):
        (app_dir / "generated" / f"m{i}.py").write_text(f"X = {i}\n")
    framework.write(app_dir, "v2")  # the 200th file
    assert wait_for(lambda: http_get(port, 1) == "v2", timeout=5), w.log()
    assert w.wait_log("restarted")
    # the burst was one batch: a change after it is the second restart, alone in its batch
    write_sentinel(app_dir / "sentinel.py")
    assert w.wait_log("sentinel.py changed; restarted", timeout=10), w.log()
    assert w.log().count("restarted") == 2, w.log()
    assert re.search(r"and 199 more changed; restarted", w.log()), w.log()


def test_a_syntax_error_never_ends_watchd_and_the_fix_serves_again(
    framework: Framework, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    framework.write(app_dir, "v1", broken=True)
    w = start(start_watchd, framework, app_dir, port)
    assert w.wait_log("waiting for a change to start it again", timeout=20), w.log()
    assert "SyntaxError" in w.log()
    assert w.alive()
    framework.write(app_dir, "v2")
    assert wait_for(lambda: http_get(port, 1) == "v2", timeout=10), w.log()
    framework.write(app_dir, "v3", broken=True)  # a broken save while it serves ...
    assert w.wait_log("check python failed (SyntaxError", timeout=10), w.log()
    assert http_get(port, 1) == "v2"  # ... is refused by the Python app's default check: v2 serves on
    framework.write(app_dir, "v4")
    assert wait_for(lambda: http_get(port, 1) == "v4", timeout=10), w.log()


# ----------------------------------------------------------------------------- socket handoff

GUNICORN = Framework("gunicorn", WSGI_APP, "app.py", lambda port: [])
WERKZEUG = Framework("werkzeug", WERKZEUG_APP, "app.py", lambda port: [])
LISTENING: dict[str, tuple[Framework, list[str], list[str]]] = {
    # how each app takes the socket watchd holds
    "flask": (FRAMEWORKS[1], ["--listen-env", "werkzeug"], ["flask", "--app", "app", "run", "--no-reload"]),
    "werkzeug": (WERKZEUG, ["--listen-env", "werkzeug"], [PY, "app.py"]),
    "uvicorn": (FRAMEWORKS[3], [], ["uvicorn", "app:app", "--fd", "3"]),
    "plain": (FRAMEWORKS[0], [], [PY, "app.py"]),  # socket.socket(fileno=3) when LISTEN_PID is its own
    "tornado": (FRAMEWORKS[4], [], [PY, "app.py"]),  # the same, through HTTPServer.add_sockets
    "gunicorn": (GUNICORN, [], ["gunicorn", "--workers", "1", "app:app"]),  # LISTEN_FDS, by itself
    # a string run: dash stays the parent of a plain command, so LISTEN_PID needs `exec`.
    # (One worker: a second one boots lazily and may import a save made after the first answered.)
    "gunicorn-exec": (GUNICORN, [], ["--run", "exec gunicorn --workers 1 app:app"]),
}


# Without SO_REUSEPORT steering (macOS) the old and the new app share one socket through a restart,
# and uvicorn can close a connection it accepted as it shuts down: in the macOS lane about one
# request in 95 failed in 2 runs of 3. Linux steers new connections to the new app only, and loses
# none; off Linux a few are allowed for uvicorn (the README's platform table says so).
SHARED_SOCKET_DROPS = {"uvicorn": 3}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LISTENING))
def test_with_listen_no_request_fails_through_10_restarts(
    name: str, tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    framework, flags, argv = LISTENING[name]
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    framework.write(app_dir, "v0")
    if argv[0] != "--run":
        argv = ["--", *argv]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    w = start_watchd(["-p", "*.py", "--listen", "127.0.0.1:0", *flags, *argv], cwd=app_dir, env=env)
    port = listening_port(w.log())
    assert wait_for(lambda: http_get(port, 1) == "v0", timeout=20), w.log()
    poller = Poller(lambda: http_get(port, 20))
    try:
        for i in range(1, 11):
            framework.write(app_dir, f"v{i}")
            assert wait_for(lambda i=i: f"v{i}" in poller.bodies, timeout=20), w.log()
    finally:
        poller.stop()
    assert w.wait_log("restarted", count=10)
    allowed = 0 if sys.platform == "linux" else SHARED_SOCKET_DROPS.get(name, 0)
    assert len(poller.failed) <= allowed, (poller.failed, poller.ok, w.log())
    assert poller.ok >= 11  # v0 to v10, each seen


def test_a_same_size_save_within_the_same_second_serves_the_new_code(
    tmp_path: Path, start_watchd: type[Watchd], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python validates a .pyc by its source's size and mtime in whole seconds: v1 -> v2 saved
    within one second would start the new app on v1's bytecode unless watchd removes it."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the app must cache its bytecode
    flask = FRAMEWORKS[1]
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    port = free_port()
    flask.write(app_dir, "v1")
    w = start(start_watchd, flask, app_dir, port)
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=20), w.log()
    assert list((app_dir / "__pycache__").glob("app.*.pyc"))  # the app imported v1 and cached it
    stamp = (app_dir / "app.py").stat().st_mtime_ns
    tmp = app_dir / ".app.py.new"
    tmp.write_text(FLASK_APP.format(version="v2"))  # the same size as v1
    os.utime(tmp, ns=(stamp, stamp))  # and the same second
    os.replace(tmp, app_dir / "app.py")
    assert wait_for(lambda: http_get(port, 1) == "v2", timeout=5), (http_get(port, 1), w.log())


@pytest.mark.linux_only("an early start needs a second socket that SO_REUSEPORT steering makes idle")
def test_with_listen_an_early_start_that_goes_stale_loses_no_request(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    """A second change after the early start, before the debounce ends, discards the early app;
    the connections it never got must not be lost either. (-v logs the early start, and a
    debounce of 1 s leaves the test time to make its second change after seeing it.)"""
    plain = FRAMEWORKS[0]
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    plain.write(app_dir, "v0")
    w = start_watchd(
        ["-v", "-p", "*.py", "--debounce", "1s", "--listen", "127.0.0.1:0", "--", PY, "app.py"], cwd=app_dir
    )
    port = listening_port(w.log())
    assert wait_for(lambda: http_get(port, 1) == "v0", timeout=20), w.log()
    poller = Poller(lambda: http_get(port, 20))
    try:
        for i in range(1, 4):
            plain.write(app_dir, f"v{i}")
            assert w.wait_log("early (pid", count=i, timeout=10), w.log()  # the batch is still open
            (app_dir / f"late{i}.py").write_text("")
            assert w.wait_log("files changed after the early start", count=i, timeout=10), w.log()
            assert wait_for(lambda i=i: f"v{i}" in poller.bodies, timeout=20), w.log()
            assert w.wait_log("restarted", count=i, timeout=10), w.log()
    finally:
        poller.stop()
    assert poller.failed == [], (poller.failed, poller.ok)
    assert "(started early" not in w.log()  # every early app went stale: the normal restart ran


def test_with_no_pattern_an_edit_to_an_imported_package_outside_the_app_restarts_it(
    framework: Framework, app_dir: Path, tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    """`watchd -- PROGRAM` with nothing else watches what the app imported (watch_imports is on for a
    Python program): a sibling package outside the app's directory, as an editable install would be."""
    lib = tmp_path / "lib"
    (lib / "sibling").mkdir(parents=True)
    save(lib / "sibling" / "__init__.py", "VALUE = 1\n")
    port = free_port()
    save(app_dir / framework.file, "import sibling\n" + framework.source.format(version="v1"))
    env = dict(os.environ, PORT=str(port), PYTHONPATH=str(lib), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("NOTIFY_SOCKET", None)
    w = start_watchd(["-v", "--", *framework.argv(port)], cwd=app_dir, env=env)
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=20), w.log()
    assert w.wait_log(f"{lib / 'sibling'}/ (1)", timeout=10), w.log()
    save(lib / "sibling" / "__init__.py", "VALUE = 2\n")
    assert w.wait_log("sibling/__init__.py changed; restarted", timeout=10), w.log()
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=20), w.log()
