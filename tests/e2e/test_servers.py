"""Real gunicorn and uWSGI reloaded by the installed watchd running the shipped example configs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.procs import HELPERS, Watchd, stop_process, wait_for, wait_workers_settled
from helpers.servers import APP, BIN, Poller, Server, write_app

CONFIG = Path(__file__).resolve().parents[2] / "config"
KINDS = ["gunicorn", "uwsgi"]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    write_app(d, "v1")
    return d


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Every server a test starts is stopped (its whole process group), even when the test fails."""
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def start_server(servers: list[Server], kind: str, app_dir: Path, tmp_path: Path) -> Server:
    server = Server(kind, app_dir, tmp_path / f"{kind}.pid", tmp_path / f"{kind}-{len(servers)}.log")
    servers.append(server)
    server.wait_settled()
    return server


def run_config(start_watchd: type[Watchd], kind: str, app_dir: Path, pidfile: Path, *opts: str) -> Watchd:
    """watchd with config/<kind>.yaml, verbatim; only the environment points it at this test's files
    (and its control socket, named after the config file, at this test's runtime directory: tests
    of the same config running at once would find each other's watchd running it)."""
    env = dict(os.environ)
    env.update({"APP_DIR": str(app_dir), f"{kind.upper()}_PIDFILE": str(pidfile)})
    env["XDG_RUNTIME_DIR"] = str(app_dir.parent)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return start_watchd([*opts, "--config", str(CONFIG / f"{kind}.yaml")], cwd=app_dir, env=env)


@pytest.mark.parametrize("kind", KINDS)
def test_edit_reloads_the_new_code_gracefully(
    kind: str, app_dir: Path, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    server = start_server(servers, kind, app_dir, tmp_path)
    master = server.master_pid()
    w = run_config(start_watchd, kind, app_dir, server.pidfile)
    poller = Poller(lambda: server.get(timeout=5))
    try:
        assert wait_for(lambda: poller.ok > 5)
        write_app(app_dir, "v2")
        assert wait_for(lambda: server.get() == "v2", timeout=3), w.log()
        assert wait_for(lambda: "reloaded: 2 new workers" in w.log(), timeout=10), w.log()
        assert server.master_pid() == master  # a graceful reload, not a restart
        assert f"{kind} (pid {master}) reloaded: 2 new workers in" in w.log()
    finally:
        poller.stop()
    if kind == "gunicorn":  # gunicorn keeps serving throughout a HUP
        assert poller.failed == [], f"{len(poller.failed)} failed of {poller.ok + len(poller.failed)}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_burst_of_200_saves_is_one_reload(
    kind: str, app_dir: Path, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    server = start_server(servers, kind, app_dir, tmp_path)
    # a 500 ms quiet period: the burst's writer (this test) may not be scheduled for more than the
    # default 50 ms on a loaded machine, and the batch rightly closes then (seen with a CPU hog)
    w = run_config(start_watchd, kind, app_dir, server.pidfile, "--debounce", "500ms")
    for i in range(199):
        (app_dir / f"mod{i}.py").write_text(f"X = {i}\n")
    write_app(app_dir, "v2")
    assert wait_for(lambda: server.get() == "v2", timeout=5), w.log()
    assert wait_for(lambda: "reloaded:" in w.log(), timeout=10), w.log()
    # one more save reloads once more: nothing from the burst was still pending
    write_app(app_dir, "v3")
    assert wait_for(lambda: server.get() == "v3", timeout=5), w.log()
    assert w.wait_log("reloaded:", count=2, timeout=10), w.log()
    assert w.log().count("sent HUP") == 2
    assert server.reloads() == 2


def test_gunicorn_usr2_upgrade_then_next_change_reloads_the_new_master(
    app_dir: Path, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    server = start_server(servers, "gunicorn", app_dir, tmp_path)
    old = server.master_pid()
    w = run_config(start_watchd, "gunicorn", app_dir, server.pidfile)
    # binary upgrade: a new master starts beside the old one and writes PIDFILE.2 ...
    os.kill(old, signal.SIGUSR2)
    second = server.pidfile.with_name(server.pidfile.name + ".2")
    assert wait_for(lambda: second.exists() and second.read_text().strip() != "", timeout=10), server.log()
    new = int(second.read_text())
    # ... the old master is retired: it removes PIDFILE, and the new master, once it notices,
    # renames PIDFILE.2 to PIDFILE. The change below lands while there is no pidfile at all.
    os.kill(old, signal.SIGTERM)
    server.proc.wait(10)
    write_app(app_dir, "v2")
    assert wait_for(lambda: server.get() == "v2", timeout=5), w.log()
    assert w.wait_log(f"sent HUP to gunicorn (pid {new})"), w.log()
    assert w.wait_log(f"gunicorn (pid {new}) reloaded", timeout=10), w.log()


@pytest.mark.parametrize("kind", KINDS)
def test_stopped_server_is_a_clear_error_then_reloads_when_back(
    kind: str, app_dir: Path, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    server = start_server(servers, kind, app_dir, tmp_path)
    dead = server.master_pid()
    w = run_config(start_watchd, kind, app_dir, server.pidfile)
    server.kill_hard()  # the pidfile stays behind, naming a dead PID
    write_app(app_dir, "v2")
    assert w.wait_log(f"HUP not sent: no process with PID {dead}"), w.log()
    assert w.alive()
    again = start_server(servers, kind, app_dir, tmp_path)  # serves v2 from the start
    pid = again.master_pid()
    write_app(app_dir, "v3")
    assert wait_for(lambda: again.get() == "v3", timeout=5), w.log()
    assert w.wait_log(f"sent HUP to {kind} (pid {pid})")


@pytest.mark.parametrize("kind", KINDS)
def test_check_gate_keeps_broken_code_out(
    kind: str, app_dir: Path, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    server = start_server(servers, kind, app_dir, tmp_path)
    w = run_config(start_watchd, kind, app_dir, server.pidfile)
    (app_dir / "app.py").write_text('VERSION = "broken"\n\ndef app(environ, start_response:\n')
    assert w.wait_log("app.py changed; check python failed (SyntaxError in app.py, "), w.log()
    assert "HUP not sent" in w.log()
    assert "    |     def app(environ, start_response:" in w.log()  # as Python prints it
    assert server.reloads() == 0
    assert server.get() == "v1"  # still serving the last good code
    write_app(app_dir, "v3")
    assert wait_for(lambda: server.get() == "v3", timeout=5), w.log()
    assert w.wait_log("reloaded:", timeout=10)
    assert w.log().count("sent HUP") == 1
    assert server.reloads() == 1


def test_a_same_size_save_within_the_same_second_reloads_onto_the_new_code(
    app_dir: Path,
    tmp_path: Path,
    servers: list[Server],
    start_watchd: type[Watchd],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python validates a .pyc by its source's size and whole-second mtime: the new workers would
    import v1's bytecode for v2 unless watchd removes it before the signal."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the workers cache their bytecode
    server = start_server(servers, "gunicorn", app_dir, tmp_path)
    assert list((app_dir / "__pycache__").glob("app.*.pyc"))  # a worker imported v1 and cached it
    w = run_config(start_watchd, "gunicorn", app_dir, server.pidfile)
    stamp = (app_dir / "app.py").stat().st_mtime_ns
    new = app_dir / ".app.py.new"
    new.write_text(APP.format(version="v2"))  # the same size as v1 ...
    os.utime(new, ns=(stamp, stamp))  # ... and the same second
    os.replace(new, app_dir / "app.py")
    assert w.wait_log("reloaded: 2 new workers", timeout=15), w.log()
    assert server.get() == "v2", server.log()


DJANGO_VIEWS = """\
from django.http import HttpResponse

VERSION = "{version}"


def index(request):
    return HttpResponse(VERSION)
"""
DJANGO_URLS = """\
from django.urls import path

from mysite.views import index

urlpatterns = [path("", index)]
"""
# The README's fix ("Django: load the URLconf at start"), appended to the project's wsgi.py.
DJANGO_URLCONF_AT_START = """
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # import the URLconf and the views now, not at the first request
"""


def django_project(tmp_path: Path, *, urlconf_at_start: bool) -> Path:
    project = tmp_path / "site"
    project.mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(project)], check=True, timeout=60
    )
    (project / "mysite" / "views.py").write_text(DJANGO_VIEWS.format(version="v1"))
    (project / "mysite" / "urls.py").write_text(DJANGO_URLS)
    if urlconf_at_start:
        with (project / "mysite" / "wsgi.py").open("a") as f:
            f.write(DJANGO_URLCONF_AT_START)
            # the end of a worker's boot, in the server's log: it holds the code it loaded from here on
            f.write('import os\nprint(f"app loaded by {os.getpid()}", flush=True)\n')
    return project


def workers_loaded(server: Server) -> bool:
    """Every worker of the server has finished loading the app (urlconf_at_start projects)."""
    from watchd.actions.confirm import children  # noqa: PLC0415

    pids = list(children(server.master_pid()))
    return bool(pids) and all(f"app loaded by {pid}\n" in server.log() for pid in pids)


def django_reload(
    kind: str, project: Path, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> tuple[Server, Watchd]:
    """Serve the project, reload it onto v2 with watchd, then save a syntax error in the views."""
    server = Server(
        kind, project, tmp_path / f"{kind}.pid", tmp_path / f"{kind}.log", "mysite.wsgi:application"
    )
    servers.append(server)
    server.wait_settled()
    w = run_config(start_watchd, kind, project, server.pidfile, "--debounce", "300ms")
    (project / "mysite" / "views.py").write_text(DJANGO_VIEWS.format(version="v2"))
    assert w.wait_log("reloaded: 2 new workers", timeout=15), w.log()
    return server, w


def wait_booted(server: Server, w: Watchd) -> None:
    """gunicorn's new workers have loaded the app, not only started: watchd's confirmation counts a
    worker that has run for 0.5 s, and on a loaded machine one may still be importing Django then; a
    save written meanwhile is what it loads, check or no check (gunicorn imports at a worker's boot;
    uWSGI's master loads the app before it forks its workers)."""
    if server.kind == "gunicorn":
        assert wait_for(lambda: workers_loaded(server), 15), (server.log(), w.log())


@pytest.mark.parametrize("kind", KINDS)
def test_django_with_the_urlconf_loaded_at_start_never_serves_a_save_the_check_kept_out(
    kind: str, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    project = django_project(tmp_path, urlconf_at_start=True)
    server, w = django_reload(kind, project, tmp_path, servers, start_watchd)
    wait_booted(server, w)
    assert server.get() == "v2"  # one request: one worker has answered, the other has not
    (project / "mysite" / "views.py").write_text(DJANGO_VIEWS.format(version="v3") + "def broken(:\n")
    assert w.wait_log("check python failed (SyntaxError in mysite/views.py"), w.log()
    hups = w.log().count("sent HUP")
    answers = [server.get() for _ in range(20)]
    assert answers == ["v2"] * 20, (answers, server.log(), w.log())
    assert w.log().count("sent HUP") == hups  # none for the broken save


def test_django_without_it_a_worker_that_has_not_answered_loads_the_broken_save(
    tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    """Why the README's wsgi.py lines matter: the check kept the save out, and Django loaded it anyway."""
    project = django_project(tmp_path, urlconf_at_start=False)
    server, w = django_reload("gunicorn", project, tmp_path, servers, start_watchd)
    hups = w.log().count("sent HUP")
    (project / "mysite" / "views.py").write_text(DJANGO_VIEWS.format(version="v3") + "def broken(:\n")
    assert w.wait_log("check python failed (SyntaxError in mysite/views.py"), w.log()
    assert server.get() is None  # a worker's first request imports the broken views: 500
    assert w.log().count("sent HUP") == hups  # none for the broken save


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("ignore", "HUP sent to {pid} but its workers were not replaced"),
        ("die", "prefork.py (pid {pid}) exited"),
    ],
)
def test_confirmation_reports_targets_that_do_not_reload(
    mode: str, message: str, tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    pidfile = tmp_path / "prefork.pid"
    target = subprocess.Popen(
        [sys.executable, str(HELPERS / "prefork.py"), str(pidfile), mode], start_new_session=True
    )
    try:
        assert wait_for(pidfile.exists)
        assert wait_workers_settled(target.pid, 2)
        w = start_watchd(["--pidfile", str(pidfile), "--confirm-timeout", "1s", str(src)])
        (src / "app.py").write_text("")
        assert w.wait_log("waiting for its 2 workers to be replaced"), w.log()
        assert w.wait_log(message.format(pid=target.pid), timeout=5), w.log()
        level = "WARNING" if mode == "ignore" else "ERROR"
        line = next(ln for ln in w.log().splitlines() if message.format(pid=target.pid) in ln)
        assert level in line
        assert w.alive()
    finally:
        stop_process(target)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_saves_at_a_persons_pace_each_reload_is_confirmed_or_superseded(
    kind: str, app_dir: Path, tmp_path: Path, servers: list[Server], start_watchd: type[Watchd]
) -> None:
    """Saves 0.3 s apart: each one's HUP reaches the server while the previous reload's workers
    are still young. Each reload is confirmed, or superseded by the next HUP's confirmation (-v
    says so); none is reported as a failure, and the last one is confirmed."""
    server = start_server(servers, kind, app_dir, tmp_path)
    master = server.master_pid()
    w = run_config(start_watchd, kind, app_dir, server.pidfile, "-v")  # -v: a superseded one says so
    saves = 3
    first = time.monotonic()
    for i in range(saves):
        # the pace of the scenario, not a wait for a result: save i lands 0.3 s after save i-1
        time.sleep(max(0.0, first + 0.3 * i - time.monotonic()))
        write_app(app_dir, f"v{i + 2}")
        assert w.wait_log("sent HUP", count=i + 1, timeout=2), w.log()
    last = f"v{saves + 1}"
    assert wait_for(lambda: server.get() == last, timeout=10), (w.log(), server.log())
    # every HUP's confirmation has ended once the last one reports: confirmed, or superseded
    assert w.wait_log("reloaded: 2 new workers", timeout=15), w.log()
    lines = w.log().splitlines()
    outcomes = [ln for ln in lines if "reloaded:" in ln or "superseded" in ln]
    assert len(outcomes) == saves, w.log()
    assert f"{kind} (pid {master}) reloaded: 2 new workers in " in outcomes[-1], w.log()
    assert [ln for ln in lines if "WARNING" in ln or "ERROR" in ln or "cannot confirm" in ln] == []
    assert w.log().count("sent HUP") == saves
    assert server.master_pid() == master
