"""With `listen`, connections move to the next app only once it serves: it accepted watchd's probe,
or it sent READY=1 on the NOTIFY_SOCKET watchd gave it. Until then, and for good if it exits or is
not ready within ready_timeout, the running app keeps serving every request."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.apps import FLASK_APP, PLAIN_APP, TORNADO_APP, save
from helpers.procs import Watchd, pid_alive, wait_for
from helpers.servers import APP as WSGI_APP
from helpers.servers import Poller, http_get, listening_port

PY = sys.executable
BIN = Path(PY).parent

pytestmark = pytest.mark.linux_only(
    "the next app boots on a second socket that SO_REUSEPORT steering keeps idle"
)

SLOW_BOOT = "import time\ntime.sleep({seconds})\n"
# Sends READY=1 at once, then takes a while before it accepts
READY_FIRST = """\
import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
time.sleep(1.5)
"""


def plain(version: str, before: str = "") -> str:
    return before + PLAIN_APP.format(version=version)


def start(start_watchd: type[Watchd], app_dir: Path, *extra: str) -> tuple[Watchd, int, int]:
    """watchd running app.py with listen; the port and the first app's PID once it answers v0."""
    w = start_watchd(["-v", "-p", "*.py", "--listen", "127.0.0.1:0", *extra, "--", PY, "app.py"], cwd=app_dir)
    port = listening_port(w.log())
    assert wait_for(lambda: http_get(port, 2) == "v0", timeout=20), w.log()
    pid = int(re.findall(r"started .* \(pid (\d+)\)", w.log())[0])
    return w, port, pid


def takes_over_without_waits(w: Watchd, port: int, save_next: Callable[[], None], version: str) -> None:
    """While a client polls, `save_next` saves code whose app needs a while before it serves:
    `version` answers in the end, no request failed, none waited a second."""
    poller = Poller(lambda: http_get(port, 20))
    try:
        save_next()
        assert wait_for(lambda: version in poller.bodies, timeout=30), w.log()
    finally:
        poller.stop()
    assert poller.failed == [], (poller.failed, w.log())
    assert poller.slowest < 1.0, (poller.slowest, w.log())  # nobody waited out the boot
    assert "is ready: it accepted a connection" in w.log()


def keeps_serving_until_the_fix(
    w: Watchd,
    port: int,
    pid: int,
    *,
    save_broken: Callable[[], None],
    save_fix: Callable[[], None],
    version: str,
    why: str = "exited with status 1",
) -> Poller:
    """`save_broken` saves code whose app fails at import (`why`): the running app (`pid`) keeps
    answering; then `save_fix` takes over with `version`. The poller, stopped, for more checks."""
    poller = Poller(lambda: http_get(port, 20))
    try:
        save_broken()
        assert w.wait_log(f"kept pid {pid}: the new app {why} before it was ready", timeout=20), w.log()
        answered = poller.ok
        assert wait_for(lambda: poller.ok >= answered + 5, timeout=10)  # still served, by the old app
        save_fix()
        assert wait_for(lambda: version in poller.bodies, timeout=20), w.log()
    finally:
        poller.stop()
    assert poller.failed == [], (poller.failed, w.log())
    return poller


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    save(d / "app.py", plain("v0"))
    return d


def test_no_request_waits_for_an_app_that_boots_for_2_s(app_dir: Path, start_watchd: type[Watchd]) -> None:
    w, port, _ = start(start_watchd, app_dir)
    takes_over_without_waits(
        w, port, lambda: save(app_dir / "app.py", plain("v1", SLOW_BOOT.format(seconds=2))), "v1"
    )
    assert w.wait_log("took over once ready")


def test_an_app_that_exits_1_at_import_leaves_the_old_one_answering_until_the_fix(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    w, port, pid = start(start_watchd, app_dir)
    poller = keeps_serving_until_the_fix(
        w,
        port,
        pid,
        save_broken=lambda: save(app_dir / "app.py", plain("v1", "raise SystemExit(1)\n")),
        save_fix=lambda: save(app_dir / "app.py", plain("v2")),
        version="v2",
    )
    assert poller.bodies == {"v0", "v2"}


def test_tornado_whose_helper_module_breaks_after_the_framework_loaded_keeps_serving(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    """A module imported after the framework that fails at import (0.15-0.25 s into the boot)
    used to replace the serving app with a dead one."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    save(app_dir / "helpers.py", "SUFFIX = ''\n")
    save(
        app_dir / "app.py",
        TORNADO_APP.format(version="v0").replace("VERSION = ", "from helpers import SUFFIX\nVERSION = "),
    )
    w, port, pid = start(start_watchd, app_dir)
    poller = Poller(lambda: http_get(port, 20))
    try:
        save(
            app_dir / "helpers.py", "SUFFIX = NAME_NOT_DEFINED\n"
        )  # compiles (the check passes), fails at import
        assert w.wait_log(
            f"kept pid {pid}: the new app exited with status 1 before it was ready", timeout=20
        ), w.log()
        save(app_dir / "helpers.py", "SUFFIX = '-fixed'\n")
        save(
            app_dir / "app.py",
            TORNADO_APP.format(version="v1").replace("VERSION = ", "from helpers import SUFFIX\nVERSION = "),
        )
        assert wait_for(lambda: "v1" in poller.bodies, timeout=20), w.log()
    finally:
        poller.stop()
    assert poller.failed == [], (poller.failed, w.log())
    assert poller.bodies == {"v0", "v1"}


def test_ready_1_before_the_app_accepts_does_not_move_connections_early(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    """gunicorn's master says READY=1 before a worker has loaded the app: where watchd can probe,
    the accept decides."""
    w, port, _ = start(start_watchd, app_dir)
    takes_over_without_waits(w, port, lambda: save(app_dir / "app.py", plain("v1", READY_FIRST)), "v1")


def test_an_app_not_ready_within_ready_timeout_is_stopped_and_the_next_save_tries_again(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    w, port, pid = start(start_watchd, app_dir, "--ready-timeout", "1s")
    save(app_dir / "app.py", plain("v1", SLOW_BOOT.format(seconds=600)))
    assert w.wait_log(f"kept pid {pid}: the new app was not ready within 1 s", timeout=20), w.log()
    assert http_get(port, 5) == "v0"
    save(app_dir / "app.py", plain("v2"))
    assert wait_for(lambda: http_get(port, 5) == "v2", timeout=20), w.log()


def test_a_save_while_the_next_app_boots_gives_way_to_the_newest_code(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    w, port, _ = start(start_watchd, app_dir)
    booting = 'print("booting v1", flush=True)\n' + SLOW_BOOT.format(seconds=600)
    save(app_dir / "app.py", plain("v1", booting))
    assert w.wait_log("serves until the next one", timeout=20), w.log()  # watchd waits
    assert w.wait_log("booting v1", timeout=20), w.log()  # and the next app has read v1 (not v2, below)
    save(app_dir / "app.py", plain("v2"))
    assert w.wait_log("files changed again before the new app", timeout=20), w.log()
    assert wait_for(lambda: http_get(port, 5) == "v2", timeout=20), w.log()


def test_gunicorn_whose_worker_loads_the_app_for_2_s_takes_over_once_a_worker_accepts(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    """A real gunicorn: its master sends READY=1 at once, its worker then imports the app (2 s here)."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    save(app_dir / "app.py", WSGI_APP.format(version="v0"))
    gunicorn = [str(BIN / "gunicorn"), "--workers", "1", "app:app"]
    w = start_watchd(["-v", "-p", "*.py", "--listen", "127.0.0.1:0", "--", *gunicorn], cwd=app_dir)
    port = listening_port(w.log())
    assert wait_for(lambda: http_get(port, 2) == "v0", timeout=20), w.log()
    slow = SLOW_BOOT.format(seconds=2) + WSGI_APP.format(version="v1")
    takes_over_without_waits(w, port, lambda: save(app_dir / "app.py", slow), "v1")


def test_a_save_that_leaves_the_content_as_it_was_discards_the_app_started_for_it(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    w, port, pid = start(start_watchd, app_dir, "--content")
    (app_dir / "app.py").touch()  # an event, the same bytes
    assert w.wait_log("started the next", timeout=20), w.log()
    early = int(re.findall(r"started the next .* early \(pid (\d+)\)", w.log())[0])
    assert w.wait_log("the content is as it was: nothing to do", timeout=20), w.log()
    assert wait_for(lambda: not pid_alive(early), timeout=10), w.log()  # not left running beside it
    assert pid_alive(pid) and http_get(port, 5) == "v0"


def test_flask_serving_its_import_error_as_500s_does_not_take_over(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    """flask run under listen_env: werkzeug does not exit on an import error: WERKZEUG_RUN_MAIN, which
    Werkzeug needs to take the socket, makes it answer every request with a 500 instead. watchd's
    probe asks it OPTIONS * (no view runs): a 500 keeps the running app."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    save(app_dir / "app.py", FLASK_APP.format(version="v0"))
    flask = [str(BIN / "flask"), "--app", "app", "run", "--no-reload"]
    w = start_watchd(
        ["-v", "-p", "*.py", "--listen", "127.0.0.1:0", "--listen-env", "werkzeug", "--", *flask], cwd=app_dir
    )
    port = listening_port(w.log())
    assert wait_for(lambda: http_get(port, 2) == "v0", timeout=20), w.log()
    pid = int(re.findall(r"started .* \(pid (\d+)\)", w.log())[0])
    poller = keeps_serving_until_the_fix(
        w,
        port,
        pid,
        save_broken=lambda: save(
            app_dir / "app.py", "import no_such_module\n" + FLASK_APP.format(version="v1")
        ),
        save_fix=lambda: save(app_dir / "app.py", FLASK_APP.format(version="v2")),
        version="v2",
        why="answered 500 Internal Server Error",
    )
    assert poller.bodies == {"v0", "v2"}
