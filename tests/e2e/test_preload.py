"""Warm restarts end to end (`preload: auto`): the installed watchd forks a fork server that has
imported the app's stable modules, with real interpreters and real frameworks.

A warm start is proven by PIDs (the app's parent is the fork server, not watchd) and by the
server's preload count in -v's "warm (fork, N modules preloaded)". Each test first waits for the
server to be ready (the app's first start is always cold: the server preloads what it imported).
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from helpers.apps import ASGI_APP, DJANGO_URLS, FLASK_APP, PLAIN_APP, TORNADO_APP, plain_app, save
from helpers.procs import WATCHD, Watchd, pid_alive, wait_for
from helpers.servers import APP as WSGI_APP
from helpers.servers import Poller, free_port, http_get, listening_port
from helpers.terminal import Pty

PY = sys.executable
BIN = Path(PY).parent
READY = re.compile(r"warm restarts: fork server pid (\d+) preloaded (\d+) modules")


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    return d


def env_with(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@dataclass
class Server:
    pid: int
    modules: int


def server_ready(w: Watchd, count: int = 1, timeout: float = 20.0) -> Server:
    """The fork server that became ready `count`-th (the first one says so at INFO, later ones at -v)."""
    pattern = re.compile(r"fork server pid (\d+) preloaded (\d+) modules")
    assert wait_for(lambda: len(pattern.findall(w.log())) >= count, timeout), w.log()
    pid, modules = pattern.findall(w.log())[count - 1]
    return Server(int(pid), int(modules))


def app_pids(log: str) -> list[int]:
    return [int(p) for p in re.findall(r"(?:started \S.*? \(pid |new pid )(\d+)", log)]


def latest_app(w: Watchd) -> int:
    """The PID of the app running now: the last one the log names, once it is alive (under load
    the new app can answer before watchd has written the line naming it)."""
    found: list[int] = []

    def named_and_alive() -> bool:
        pids = app_pids(w.log())
        if pids and pid_alive(pids[-1]):
            found.append(pids[-1])
            return True
        return False

    assert wait_for(named_and_alive, timeout=5), w.log()
    return found[-1]


def parent_of(pid: int) -> int:
    return psutil.Process(pid).ppid()


# ----------------------------------------------------------------------------- warm, proven


def test_a_warm_restart_is_a_fork_of_the_server_and_runs_the_new_code(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    server = server_ready(w)
    assert parent_of(app_pids(w.log())[0]) == w.proc.pid  # the first start is cold
    for i in (2, 3):
        plain_app(app_dir, f"v{i}")
        assert wait_for(lambda i=i: http_get(port, 1) == f"v{i}", timeout=5), w.log()
        assert w.wait_log("restarted", count=i - 1)
        new = app_pids(w.log())[-1]
        assert parent_of(new) == server.pid, w.log()
    assert w.log().count(f"warm (fork, {server.modules} modules preloaded) in ") >= 2, w.log()
    assert server.modules > 100  # http.server, socketserver, email ... and the interpreter's own


HELPER_APP = """\
import http.server, os, signal, threading
import helper

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = helper.VALUE.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever(poll_interval=0.05)
"""


def test_an_edit_of_the_apps_own_module_is_imported_afresh(app_dir: Path, start_watchd: type[Watchd]) -> None:
    port = free_port()
    save(app_dir / "app.py", HELPER_APP)
    save(app_dir / "helper.py", 'VALUE = "one"\n')
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "one", timeout=10), w.log()
    server = server_ready(w)
    save(app_dir / "helper.py", 'VALUE = "two"\n')
    assert wait_for(lambda: http_get(port, 1) == "two", timeout=5), w.log()
    assert parent_of(latest_app(w)) == server.pid
    assert "helper.py" not in " ".join(re.findall(r"not preloading (\S+)", w.log()))


LIB_APP = """\
import http.server, os, signal, threading
import stablelib

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("{version}-" + stablelib.VALUE).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever(poll_interval=0.05)
"""


def test_an_edit_of_a_preloaded_module_restarts_the_server_then_serves_the_new_code(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    lib = tmp_path / "lib"  # outside the watch: as site-packages is, preloaded
    lib.mkdir()
    save(lib / "stablelib.py", 'VALUE = "a"\n')
    save(app_dir / "app.py", LIB_APP.format(version="v1"))
    port = free_port()
    env = env_with(PORT=str(port), PYTHONPATH=str(lib))
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app_dir, env=env)
    assert wait_for(lambda: http_get(port, 1) == "v1-a", timeout=10), w.log()
    first = server_ready(w)
    save(lib / "stablelib.py", 'VALUE = "b"\n')  # watched as an import of the app
    assert wait_for(lambda: http_get(port, 1) == "v1-b", timeout=5), w.log()
    assert re.search(r"cold: \S*stablelib\.py changed since the fork server imported it", w.log()), w.log()
    assert wait_for(lambda: not pid_alive(first.pid), timeout=5), "the stale server was not ended"
    second = server_ready(w, count=2)
    save(app_dir / "app.py", LIB_APP.format(version="v2"))
    assert wait_for(lambda: http_get(port, 1) == "v2-b", timeout=5), w.log()  # warm, from the new server
    assert parent_of(latest_app(w)) == second.pid


THREAD_LIB = """\
import threading, time
threading.Thread(target=time.sleep, args=(3600,), daemon=True, name="metrics").start()
"""


def test_a_module_that_starts_a_thread_at_import_makes_restarts_cold_and_says_why(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    save(lib / "threadlib.py", THREAD_LIB)
    save(app_dir / "app.py", "import threadlib, time\ntime.sleep(600)\n")
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app_dir, env=env_with(PYTHONPATH=str(lib)))
    assert w.wait_log("restarts start a new interpreter (cold): importing threadlib", timeout=15), w.log()
    assert re.search(r"importing threadlib \(\S*threadlib\.py\) started a thread", w.log()), w.log()
    save(app_dir / "app.py", "import threadlib, time\ntime.sleep(601)\n")
    assert w.wait_log("restarted", timeout=5), w.log()
    assert "cold: importing threadlib" in w.log()
    assert parent_of(latest_app(w)) == w.proc.pid
    assert "warm (fork" not in w.log()
    assert w.log().count("restarts start a new interpreter") == 1  # said once


def test_no_preload_starts_every_app_cold(app_dir: Path, start_watchd: type[Watchd]) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    w = start_watchd(["-v", "--no-preload", "--", PY, "app.py"], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w.log()
    plain_app(app_dir, "v2")
    assert wait_for(lambda: http_get(port, 1) == "v2", timeout=5), w.log()
    assert parent_of(latest_app(w)) == w.proc.pid
    assert "fork server" not in w.log()


def test_a_new_watchd_restarts_warm_from_the_first_restart_with_the_cached_list(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    port = free_port()
    plain_app(app_dir, "v1")
    args = ["-v", "--", PY, "app.py"]
    w = start_watchd(args, cwd=app_dir, env=env_with(PORT=str(port)))
    server_ready(w)
    assert w.stop() == 0
    w2 = start_watchd(args, cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=10), w2.log()
    server = server_ready(w2)  # at start, from the cache: no wait for the app's reports
    plain_app(app_dir, "v2")
    assert wait_for(lambda: http_get(port, 1) == "v2", timeout=5), w2.log()
    assert parent_of(app_pids(w2.log())[-1]) == server.pid


# ----------------------------------------------------------------------------- entries and frameworks


@dataclass(frozen=True)
class Entry:
    name: str
    files: dict[str, str]  # relative path -> source with {version}
    argv: Callable[[int], list[str]]
    setup: Callable[[Path], None] | None = None

    def write(self, app_dir: Path, version: str) -> None:
        for rel, source in self.files.items():
            (app_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            save(app_dir / rel, source.format(version=version))


def startproject(app_dir: Path) -> None:
    import subprocess  # noqa: PLC0415

    subprocess.run([PY, "-m", "django", "startproject", "mysite", str(app_dir)], check=True, timeout=60)


ENTRIES = [
    Entry("script", {"app.py": PLAIN_APP}, lambda port: [PY, "app.py"]),
    Entry("module", {"pkg/__init__.py": "", "pkg/__main__.py": PLAIN_APP}, lambda port: [PY, "-m", "pkg"]),
    Entry(
        "flask",
        {"app.py": FLASK_APP},
        lambda port: [str(BIN / "flask"), "--app", "app", "run", "--no-reload", "--port", str(port)],
    ),
    Entry(
        "uvicorn", {"app.py": ASGI_APP}, lambda port: [str(BIN / "uvicorn"), "app:app", "--port", str(port)]
    ),
    Entry(
        "gunicorn",
        {"app.py": WSGI_APP},
        lambda port: [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "1", "app:app"],
    ),
    Entry(
        "django",
        {"mysite/urls.py": DJANGO_URLS},
        lambda port: [PY, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        setup=startproject,
    ),
    Entry("tornado", {"app.py": TORNADO_APP}, lambda port: [PY, "app.py"]),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_each_entry_and_framework_restarts_warm_on_the_new_code(
    entry: Entry, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    if entry.setup is not None:
        entry.setup(app_dir)
    port = free_port()
    entry.write(app_dir, "v1")
    w = start_watchd(["-v", "-p", "*.py", "--", *entry.argv(port)], cwd=app_dir, env=env_with(PORT=str(port)))
    assert wait_for(lambda: http_get(port, 1) == "v1", timeout=20), w.log()
    server = server_ready(w)
    for i in (2, 3):
        entry.write(app_dir, f"v{i}")
        assert wait_for(lambda i=i: http_get(port, 1) == f"v{i}", timeout=10), w.log()
        assert w.wait_log("restarted", count=i - 1)
    assert w.log().count("warm (fork, ") >= 2, w.log()
    assert parent_of(latest_app(w)) == server.pid
    assert "Traceback" not in w.log()


# ----------------------------------------------------------------------------- as cold starts behave


# one write for the whole line: print() writes each piece on its own when unbuffered, and watchd's
# log lines (the same output) can land between them
RANDOM_APP = """\
import os, random, sys, time, uuid
sys.stdout.write(f"draw {os.environ['WATCHD_RESTARTS']} {random.random()} {uuid.uuid4()}\\n")
sys.stdout.flush()
time.sleep(600)
"""


def test_each_warm_app_draws_its_own_random_values(app_dir: Path, start_watchd: type[Watchd]) -> None:
    save(app_dir / "app.py", RANDOM_APP)
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app_dir)
    server_ready(w)
    for i in (1, 2, 3):
        (app_dir / "touch.py").write_text(f"# {i}\n")
        assert w.wait_log(f"draw {i} ", timeout=10), w.log()
    draws = re.findall(r"draw (\d+) (\S+) (\S+)", w.log())
    warm = [d for d in draws if d[0] != "0"]
    assert len(warm) == 3, draws
    assert len({d[1] for d in warm}) == 3, draws  # random: reseeded in each fork
    assert len({d[2] for d in warm}) == 3, draws  # uuid4
    assert w.log().count("warm (fork, ") == 3, w.log()


EXIT_APP = """\
import os, signal, sys, time
if int(os.environ["WATCHD_RESTARTS"]) >= 1:
    print("warm run", os.getpid(), flush=True)
    {action}
time.sleep(600)
"""


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("sys.exit(7)", 7),
        ("os.kill(os.getpid(), signal.SIGKILL)", 137),
        ("sys.exit(0)", 0),
        ("raise ValueError('x')", 1),
    ],
)
def test_on_exit_stop_ends_watchd_with_a_warm_apps_status(
    app_dir: Path, start_watchd: type[Watchd], action: str, status: int
) -> None:
    save(app_dir / "app.py", EXIT_APP.format(action=action))
    w = start_watchd(["-v", "--on-exit", "stop", "--", PY, "app.py"], cwd=app_dir)
    server_ready(w)
    (app_dir / "touch.py").write_text("")
    assert w.wait(10) == status, w.log()
    assert "warm (fork, " in w.log()
    if status == 1:  # the traceback as a new interpreter prints it: the app's frames only
        tb = w.log()[w.log().index("Traceback") :]
        assert "_watchd_forkserver" not in tb and 'app.py", line 4, in <module>' in tb, tb


def test_exit_status_3_restarts_a_warm_app_at_once(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    runs = tmp_path / "runs"
    app = f"""\
import os, sys, time
with open({str(runs)!r}, "a") as f:
    f.write(os.environ["WATCHD_RESTARTS"] + "\\n")
if os.environ["WATCHD_RESTARTS"] == "1":
    sys.exit(3)
time.sleep(600)
"""
    save(app_dir / "app.py", app)
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app_dir)
    server = server_ready(w)
    (app_dir / "touch.py").write_text("")
    assert wait_for(lambda: runs.read_text().split() == ["0", "1", "2"], timeout=5), w.log()
    assert w.wait_log("restarting as asked (exit status 3)")
    assert wait_for(lambda: w.log().count("warm (fork, ") == 2), w.log()
    assert w.wait_log(" again (pid "), w.log()  # the restart asked for by exit status 3
    assert parent_of(latest_app(w)) == server.pid, w.log()


STUBBORN_APP = """\
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["sleep", "1000"])  # a grandchild, in the app's group
with open(sys.argv[1], "a") as f:
    f.write(f"{os.environ['WATCHD_RESTARTS']} {os.getpid()} {child.pid}\\n")
time.sleep(600)
"""


def test_a_warm_app_gets_its_stop_timeout_then_its_group_is_killed(
    tmp_path: Path, app_dir: Path, start_watchd: type[Watchd]
) -> None:
    marks = tmp_path / "marks"
    save(app_dir / "app.py", STUBBORN_APP)
    w = start_watchd(["-v", "--stop-timeout", "300ms", "--", PY, "app.py", str(marks)], cwd=app_dir)
    server = server_ready(w)
    (app_dir / "touch.py").write_text("")
    assert wait_for(lambda: marks.exists() and len(marks.read_text().splitlines()) == 2, timeout=5), w.log()
    (_, cold, cold_grandchild), (_, warm, warm_grandchild) = (
        map(int, line.split()) for line in marks.read_text().splitlines()
    )
    assert parent_of(warm) == server.pid
    assert not pid_alive(cold) and not pid_alive(cold_grandchild)
    (app_dir / "touch.py").write_text("# again\n")
    assert w.wait_log("restarted", count=2, timeout=5), w.log()
    line = [x for x in w.log().splitlines() if "restarted" in x][-1]
    assert f"pid {warm} stopped (killed by SIGKILL, KILLed after the stop timeout) in 0.3" in line, line
    assert wait_for(lambda: not pid_alive(warm_grandchild), timeout=2)
    assert psutil.Process(server.pid).children() == [psutil.Process(latest_app(w))]  # reaped
    assert w.stop() == 0
    last_grandchild = int(marks.read_text().splitlines()[-1].split()[2])
    assert wait_for(lambda: not pid_alive(last_grandchild), timeout=2)
    assert not pid_alive(server.pid)


def test_listen_fd_3_and_no_failed_request_through_warm_restarts(
    app_dir: Path, start_watchd: type[Watchd]
) -> None:
    plain_app(app_dir, "v0")
    w = start_watchd(["-v", "-p", "*.py", "--listen", "127.0.0.1:0", "--", PY, "app.py"], cwd=app_dir)
    port = listening_port(w.log())
    assert wait_for(lambda: http_get(port, 1) == "v0", timeout=10), w.log()
    server = server_ready(w)
    poller = Poller(lambda: http_get(port, 10))
    try:
        for i in range(1, 6):
            plain_app(app_dir, f"v{i}")
            assert wait_for(lambda i=i: f"v{i}" in poller.bodies, timeout=10), w.log()
    finally:
        poller.stop()
    assert poller.failed == [], (poller.failed, poller.ok)
    assert w.log().count("warm (fork, ") >= 5, w.log()  # the early starts too
    assert parent_of(latest_app(w)) == server.pid


# ----------------------------------------------------------------------------- the terminal

ASK = """\
import os, time
if os.environ["WATCHD_RESTARTS"] != "0":
    name = input("name? ")
    print(f"hello {name}", flush=True)  # one write: log lines share the terminal
time.sleep(600)
"""


@pytest.mark.skipif(not __import__("shutil").which("setsid"), reason="needs util-linux setsid")
def test_ctrl_c_ends_a_warm_app_and_watchd_and_restores_the_terminal(ptys: list[Pty], app_dir: Path) -> None:
    save(app_dir / "ask.py", ASK)
    t = Pty([WATCHD, "-v", "-p", "*.py", "--", PY, "ask.py"], cwd=app_dir)
    ptys.append(t)
    assert t.wait_for("preloaded", timeout=20), t.output()
    (app_dir / "touch.py").write_text("")
    assert t.wait_for("name? "), t.output()
    assert t.wait_for("warm (fork, "), t.output()  # logged once forked: the app may ask first
    t.type("bob\n")  # the forked app has the keyboard
    assert t.wait_for("hello bob"), t.output()
    t.type("\x03")
    assert t.wait() == 130, t.output()
    assert "Ctrl-C: stopping watchd" in t.output()
    assert t.echo_on()


def test_a_broken_app_is_reported_as_python_would(app_dir: Path, start_watchd: type[Watchd]) -> None:
    """A syntax error in the script a warm start runs: the interpreter's message, exit 1."""
    save(app_dir / "app.py", "import time\ntime.sleep(600)\n")
    w = start_watchd(["-v", "--no-check", "--", PY, "app.py"], cwd=app_dir)
    server_ready(w)
    save(app_dir / "app.py", "import time\ndef broken(:\n")
    assert w.wait_log("exited: exit 1 after", timeout=5), w.log()
    assert "warm (fork, " in w.log()
    text = w.log()
    assert re.search(r'File "\S*app\.py", line 2\n\s+def broken\(:\n', text), text
    assert "SyntaxError" in text and "_watchd_forkserver" not in text
    save(app_dir / "app.py", textwrap.dedent("import time\ntime.sleep(601)\n"))
    assert w.wait_log("app.py changed; started", timeout=5), w.log()
