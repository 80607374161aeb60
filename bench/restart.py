"""Restart mode: a tool runs a small web app as its child and restarts it when app.py changes.

    .venv/bin/python bench/restart.py [--saves N | --quick] [--apps flask,uvicorn,django,tornado]
                                      [--tools NAME[,..]] [--nodemon PATH] [--record]

Run by hand, not by CI. Each tool runs alone, one after the other, once per app, in a fresh temporary
directory holding only the app's files, on a fresh ephemeral port of 127.0.0.1. Apps, each answering
GET / with a version string that app.py sets (app.py is the file saved):
- flask: a small Flask app in app.py, `flask --app app run --no-reload --host 127.0.0.1 --port PORT`
- uvicorn: a plain ASGI app in app.py, `uvicorn app:app --host 127.0.0.1 --port PORT`
- django: a minimal project of three files: settings.py (DEBUG, ALLOWED_HOSTS, ROOT_URLCONF = "app", no
  apps, middleware or database), manage.py, and app.py, the URLconf with its one view;
  `python manage.py runserver 127.0.0.1:PORT --noreload`
- tornado: a tornado.web.Application in app.py, `python app.py PORT` (it binds 127.0.0.1:PORT; with
  `--autoreload` the Application gets autoreload=True; when LISTEN_FDS is 1 and LISTEN_PID its own PID,
  as under watchd --listen, it serves the socket of fd 3 instead, through HTTPServer.add_sockets)

For each row:
- save -> new code answering: app.py is rewritten with a new version (atomic save: app.py.tmp, then
  os.replace); time.monotonic() is taken just before the save, then GET / is sent every 10 ms (a fresh
  connection each time, 2 s timeout) until the body is the new version. N saves (default 20, --quick 5)
  after 2 warm-up saves that are discarded; median and p95 (nearest rank).
- settling: after the new version has answered, the script waits a fixed 0.5 s before the next save
  (so a second, late restart, if a tool makes one, lands between saves and is counted below).
- failed requests: a second client thread sends GET / every 10 ms from just before the first measured
  save to the end of the last one's settling; a request fails if it is refused, reset, times out
  (2 s) or is not a 200. A server that keeps its listening socket across restarts (the Flask and uvicorn
  reloaders, watchd --listen) lets connections wait in the backlog instead of failing; Django's reloader
  (its child binds the port) and Tornado's (it execs itself, which closes the socket) do not keep it.
- server starts per save: app.py appends a line to a file outside the watched directory each time it
  is loaded (imported, or run as the script), so a tool that restarts twice per save shows 2.00.

Each version of app.py is one byte longer than the one before: a __pycache__ .pyc is validated by the
source's size and its mtime in whole seconds, so a same-size save within a second of the last start
would otherwise load the old code.

A row that does not answer within 20 s (at start or after a save) is reported as failed with the
reason; a tool that exits at once with status 2 (a usage error: watchd before it has --run/--listen)
is reported as not available. Every process is started in its own session and stopped by process
group (TERM, then KILL after 5 s); children a tool moved to groups of their own are stopped the same
way. PYTHONDONTWRITEBYTECODE is removed from the children's environment (when set, every start
recompiles the imported modules and start times are distorted). Beside the table the script prints the
floor for any restart on this machine: the venv's interpreter start, launch -> code done, for
`python -c pass` and `import flask`, `import uvicorn`, `import django`, `import tornado` for the apps
run (median of 10; the interpreter's exit, about 0.1 s after importing flask, is not counted; `import
django` and `import tornado` load only the packages' __init__, the servers load the rest) and each
server alone, with the command above, launch -> first answer (median of 5).

Rows (debounce 50 ms where the row's command line sets one; otherwise each tool's defaults):
- watchd: `watchd -p '*.py' --debounce 50ms -- SERVER` (the server binds the port itself); warm: a
  Python app restarts from watchd's fork server (`preload: auto`, the default) once it is ready,
  which it is before the measured saves (the 2 warm-up saves and their settling come first)
- watchd-cold: the same with `--no-preload`: every restart is a new interpreter
- watchd-imports: `watchd --debounce 50ms -- SERVER`, every app: with no PATH and no pattern and a Python
  program (python, or a console script whose #! names it: flask, uvicorn), watchd's default is
  watch_imports: every file under . counts (less the built-in ignores: app.py.tmp is one), and so does
  every file the app imported (reported by watchd's sitecustomize hook on the app's PYTHONPATH)
- watchd-listen: `watchd -p '*.py' --listen 127.0.0.1:PORT -- SERVER'`: watchd binds the port and
  passes it as fd 3, and SERVER' serves that socket: `flask --app app run --no-reload` (with
  `--listen-env werkzeug` before the --), `uvicorn app:app --fd 3`, `python app.py` (Tornado); no django
  row: runserver cannot serve an inherited socket; warm, as the watchd row
- watchd-listen-cold: the same with `--no-preload`
- flask-stat, flask-watchdog: Werkzeug's own reloader, through
  `app.run(..., use_reloader=True, reloader_type="stat"|"watchdog")` (`flask run --reload` has no
  option for the type: it takes watchdog when that is installed)
- uvicorn-reload: `uvicorn --reload` (uses watchfiles when it is installed, else polls every 0.25 s)
- django-autoreload: `python manage.py runserver 127.0.0.1:PORT`, Django's own reloader: a parent that
  restarts a child which stats the imported files once a second (StatReloader), or subscribes to
  watchman when pywatchman is installed and a watchman server answers (WatchmanReloader); the notes
  column has the line in which Django names the one it took
- tornado-autoreload: `python app.py PORT --autoreload`, Tornado's own reloader: every 0.5 s it stats
  the imported files and execs the process again when one changed; the first look only records the
  times, so a save in the first 0.5 s after a start goes unnoticed
- hupper: `hupper -m flask ...`, `hupper -m uvicorn ...`, `hupper -m manage runserver ...` (manage.py run
  as __main__), `hupper -m app PORT` (watchdog monitor when watchdog is installed)
- watchfiles: `watchfiles --filter python 'SERVER' .`
- watchmedo: `watchmedo auto-restart --patterns='**/*.py' --recursive -- SERVER` (watchdog 7 matches
  patterns against the whole path, so '*.py' would match nothing)
- nodemon: `nodemon --ext py --exec 'SERVER'`
- entr: `entr -n -r SERVER` with app.py on stdin (-n: no TTY is needed)

Some tools start watching app.py a moment after the server first answers (hupper learns the app's files
from its worker once a second; Tornado's autoreload takes its first look 0.5 s after the Application is
made; Django's StatReloader records the times on its first pass, in a thread of its own that can get
there after the server first answered; the first warm-up save comes right after the first answer), so a
warm-up save that is not served within 5 s is made again; the notes column says how many were.
Measured saves are never repeated (each comes 0.5 s after the last answer, see settling).

Installing the baselines (a missing one is skipped with a note in the table):
- flask, uvicorn, django, tornado, hupper, watchfiles:
  `.venv/bin/pip install flask uvicorn django tornado hupper watchfiles`
  (watchdog, for flask-watchdog, hupper and watchmedo, comes with watchd)
- nodemon: Node.js and npm, then in a directory DIR outside the repository `npm install --prefix DIR nodemon`,
  and `--nodemon DIR/node_modules/.bin/nodemon` (or nodemon on PATH)
- entr: `apt-get install entr`

--record appends the table, the date, `uname -a` and the CPU model to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv's bin: watchd, flask, uvicorn, hupper, watchfiles, watchmedo
sys.path.insert(0, str(HERE))

from run import interrupt, record, split  # noqa: E402

HOST = "127.0.0.1"
POLL_S = 0.010  # GET / cadence of both clients
REQUEST_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 20.0  # launch -> first answer, and save -> new version answering
SETTLE_S = 0.5  # after the new version answered, before the next save
STOP_GRACE_S = 5.0
WARMUP = 2
WARMUP_RETRY_S = 5.0  # a warm-up save not served by then is made again
FLOOR_RUNS = 10
COLD_RUNS = 5
NOTE_MAX = 240  # characters of a failure reason in the table
DROP_ENV = (
    "PYTHONDONTWRITEBYTECODE",
    "FLASK_APP",
    "FLASK_DEBUG",
    "FLASK_RUN_HOST",
    "FLASK_RUN_PORT",
    "WERKZEUG_RUN_MAIN",
    "WERKZEUG_SERVER_FD",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "DJANGO_SETTINGS_MODULE",
    "RUN_MAIN",  # Django's reloader child
)

FLASK_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return VERSION
"""

ASGI_APP = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = VERSION.encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

# Django: app.py is the URLconf and its view; manage.py and settings.py are written once
DJANGO_APP = """
from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse(VERSION, content_type="text/plain")


urlpatterns = [path("", index)]
"""

DJANGO_MANAGE = """import os
import sys

from django.core.management import execute_from_command_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
execute_from_command_line(sys.argv)
"""

DJANGO_SETTINGS = """DEBUG = True
SECRET_KEY = "restart-bench"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "app"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
"""

# `python app.py PORT [--autoreload]`; with a socket passed as fd 3 (watchd --listen sets LISTEN_FDS,
# and LISTEN_PID to the app's PID) it serves that one instead of binding the port
TORNADO_APP = f"""
import asyncio
import socket
import sys

import tornado.httpserver
import tornado.web


class Index(tornado.web.RequestHandler):
    def get(self):
        self.write(VERSION)


async def main():
    app = tornado.web.Application([("/", Index)], autoreload="--autoreload" in sys.argv)
    server = tornado.httpserver.HTTPServer(app)
    if os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID") == str(os.getpid()):
        sock = socket.socket(fileno=3)
        sock.setblocking(False)
        server.add_sockets([sock])
    else:
        server.listen(int(sys.argv[1]), {HOST!r})
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
"""


class RowFailed(Exception):
    """The row could not be measured (the reason is the message)."""


class NotAvailable(RowFailed):
    """The tool is not installed here, or does not support the row's command line."""


class RequestFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- apps and tools


@dataclass(frozen=True)
class App:
    name: str
    body: str  # app.py after its header (which sets VERSION and records the import)
    framework: str  # the package the app needs (pip install NAME); `import NAME` is a floor
    program: str  # in BIN: a console script (also a module, for hupper -m), or python running `script`
    args: Callable[[str], list[str]]  # port -> the arguments after the program and script, binding HOST:port
    inherit_args: tuple[str, ...] | None  # ... to serve the socket inherited as fd 3 (None: it cannot)
    listen_opts: tuple[str, ...] = ()  # watchd --listen options for that program
    script: str | None = None  # the script python runs (hupper: -m its name)
    files: tuple[tuple[str, str], ...] = ()  # other files of the app (name, text), written once

    def command(self, args: Iterable[str]) -> list[str]:
        return [str(BIN / self.program), *([self.script] if self.script else []), *args]

    def server(self, port: str) -> list[str]:
        return self.command(self.args(port))

    @property
    def module(self) -> str:
        """What `python -m` runs to run the server (with the same arguments after it)."""
        return self.script.removesuffix(".py") if self.script else self.program

    def lay_out(self, appdir: Path) -> None:
        for name, text in self.files:
            (appdir / name).write_text(text)

    def source(self, n: int, record: Path) -> str:
        """app.py answering f"v{n}". Its size grows with n: a stale __pycache__ .pyc (validated by the
        source's size and mtime in whole seconds) could otherwise be loaded after a quick save."""
        head = (
            f"import os\n\n# {'.' * n}\n"
            f"VERSION = {version(n)!r}\n"
            f"with open({str(record)!r}, 'a') as _f:  # one line per import: counts server starts\n"
            "    _f.write(f'{os.getpid()} {VERSION}\\n')\n"
        )
        return head + self.body


def version(n: int) -> str:
    return f"v{n}"


APPS = {
    "flask": App(
        name="flask",
        body=FLASK_APP,
        framework="flask",
        program="flask",
        args=lambda port: ["--app", "app", "run", "--no-reload", "--host", HOST, "--port", port],
        inherit_args=("--app", "app", "run", "--no-reload"),
        listen_opts=("--listen-env", "werkzeug"),
    ),
    "uvicorn": App(
        name="uvicorn",
        body=ASGI_APP,
        framework="uvicorn",
        program="uvicorn",
        args=lambda port: ["app:app", "--host", HOST, "--port", port],
        inherit_args=("app:app", "--fd", "3"),
    ),
    "django": App(
        name="django",
        body=DJANGO_APP,
        framework="django",
        program="python",
        script="manage.py",
        args=lambda port: ["runserver", f"{HOST}:{port}", "--noreload"],
        inherit_args=None,  # runserver always binds the address it is given
        files=(("manage.py", DJANGO_MANAGE), ("settings.py", DJANGO_SETTINGS)),
    ),
    "tornado": App(
        name="tornado",
        body=TORNADO_APP,
        framework="tornado",
        program="python",
        script="app.py",
        args=lambda port: [port],
        inherit_args=(),
    ),
}
LISTENING = tuple(name for name, app in APPS.items() if app.inherit_args is not None)


@dataclass(frozen=True)
class Tool:
    """One row: `line` is the command, with the placeholders of `Tool.argv` in capitals."""

    name: str
    program: str  # looked up in BIN, then on PATH
    line: str
    apps: tuple[str, ...] = tuple(APPS)
    install: str = "part of the venv"
    stdin: str | None = None  # text fed to the tool's standard input
    says: str = ""  # a regex: its first match in the tool's output goes to the notes (the reloader it took)

    def argv(self, exe: str, app: App, port: str) -> list[str]:
        server = app.server(port)
        words = {
            "EXE": [exe],  # the tool
            "SERVER": server,  # the app's server binding HOST:PORT itself, as separate arguments
            "SERVER_LINE": [shlex.join(server)],  # ... as one shell command line
            "MODULE": [app.module],  # for hupper -m, followed by ARGS
            "ARGS": app.args(port),  # the server's arguments after the program and script
            "INHERITING": app.command(app.inherit_args or ()),  # the server serving the socket of fd 3
            "LISTEN_OPTS": list(app.listen_opts),
        }
        out: list[str] = []
        for word in shlex.split(self.line):
            out += words.get(word, [word.replace("HOST", HOST).replace("PORT", port)])
        return out


# `flask run` has no option for the reloader type (it takes watchdog when installed): app.run() has
FLASK_RELOAD = (
    """EXE -c 'from app import app; app.run("HOST", PORT, use_reloader=True, reloader_type="{}")'"""
)
TOOLS = (
    Tool("watchd", "watchd", "EXE -p '*.py' --debounce 50ms -- SERVER"),
    Tool("watchd-cold", "watchd", "EXE -p '*.py' --debounce 50ms --no-preload -- SERVER"),
    # no PATH, no pattern, a Python program (every app here: flask and uvicorn are console scripts whose
    # #! names the venv's python): watchd watches every file under . and the files the app imports
    Tool("watchd-imports", "watchd", "EXE --debounce 50ms -- SERVER"),
    Tool(
        "watchd-listen",
        "watchd",
        "EXE -p '*.py' --listen HOST:PORT LISTEN_OPTS -- INHERITING",
        apps=LISTENING,
    ),
    Tool(
        "watchd-listen-cold",
        "watchd",
        "EXE -p '*.py' --no-preload --listen HOST:PORT LISTEN_OPTS -- INHERITING",
        apps=LISTENING,
    ),
    Tool("flask-stat", "python", FLASK_RELOAD.format("stat"), apps=("flask",)),
    Tool("flask-watchdog", "python", FLASK_RELOAD.format("watchdog"), apps=("flask",)),
    Tool("uvicorn-reload", "uvicorn", "SERVER --reload", apps=("uvicorn",), install="pip install uvicorn"),
    Tool(
        "django-autoreload",
        "python",
        "EXE manage.py runserver HOST:PORT",
        apps=("django",),
        install="pip install django",
        says=r"Watching for file changes with \w+",
    ),
    Tool(
        "tornado-autoreload",
        "python",
        "SERVER --autoreload",
        apps=("tornado",),
        install="pip install tornado",
    ),
    Tool("hupper", "hupper", "EXE -m MODULE ARGS", install="pip install hupper"),
    Tool(
        "watchfiles",
        "watchfiles",
        "EXE --filter python --target-type command SERVER_LINE .",
        install="pip install watchfiles",
    ),
    Tool(
        "watchmedo",
        "watchmedo",
        "EXE auto-restart --patterns='**/*.py' --recursive --directory=. -- SERVER",
        install="pip install watchdog",
    ),
    Tool(
        "nodemon",
        "nodemon",
        "EXE --no-update-notifier --ext py --exec SERVER_LINE",
        install="npm install --prefix DIR nodemon, then --nodemon DIR/node_modules/.bin/nodemon",
    ),
    Tool("entr", "entr", "EXE -n -r SERVER", install="apt-get install entr", stdin="app.py\n"),
)
TOOL_NAMES = tuple(t.name for t in TOOLS)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"  # complete log tails in failure reasons
    return env


def find(tool: Tool, nodemon: str | None) -> str | None:
    if tool.program == "nodemon" and nodemon:
        return nodemon if os.access(nodemon, os.X_OK) else None
    if (BIN / tool.program).exists():
        return str(BIN / tool.program)
    return shutil.which(tool.program)


@functools.cache
def importable(module: str) -> bool:
    return (
        subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, check=False
        ).returncode
        == 0
    )


def unavailable(tool: Tool, exe: str | None, app: App) -> str | None:
    """Why the row cannot run here, or None."""
    if exe is None:
        return f"{tool.program} not installed ({tool.install})"
    if tool.name == "nodemon" and not shutil.which("node"):
        return "node not on PATH"
    for module in (app.framework, "watchdog" if tool.name == "flask-watchdog" else None):
        if module and not importable(module):
            return f"{module} not installed (pip install {module})"
    return None


def shown(tool: Tool, app: App) -> str:
    """The command line as the table shows it: programs by name, the port as PORT."""
    return shlex.join(tool.argv(tool.program, app, "PORT")).replace(f"{BIN}{os.sep}", "")


# --------------------------------------------------------------------------- processes

_started: list[subprocess.Popen[bytes]] = []


def spawn(argv: list[str], cwd: Path, log: Path, stdin: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a process in its own session (its own process group) and remember it."""
    with open(log, "ab") as out, open(stdin or os.devnull, "rb") as inp:
        proc = subprocess.Popen(
            argv,
            stdin=inp,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_env(),
            start_new_session=True,
        )
    _started.append(proc)
    return proc


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, session, ...]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> dict[int, tuple[int, str]]:
    """Live descendants of pid: {pid: (process group, start time)}."""
    stats = {int(e): st for e in os.listdir("/proc") if e.isdigit() and (st := _stat(int(e)))}
    children: dict[int, list[int]] = {}
    for p, st in stats.items():
        children.setdefault(int(st[1]), []).append(p)
    out, todo = {}, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out[p] = (int(stats[p][2]), stats[p][19])
        todo.extend(children.get(p, []))
    return out


def stop_group(pgid: int, leader: subprocess.Popen[bytes] | None = None) -> None:
    """TERM the process group, wait up to STOP_GRACE_S for it to empty, then KILL what is left."""
    if pgid <= 1 or pgid == os.getpgrp():
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            if leader is not None:
                leader.poll()  # reap it, or its zombie keeps the group alive
            os.killpg(pgid, 0)  # ProcessLookupError once the group is empty
            time.sleep(0.02)
        os.killpg(pgid, signal.SIGKILL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process's group, then the groups of any of its descendants that left it."""
    family = descendants(proc.pid)
    stop_group(proc.pid, proc)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_GRACE_S)
    for _ in range(3):  # a stray may have started another before it stopped
        strays = {
            int(st[2])
            for pid, (_, start) in family.items()
            if (st := _stat(pid)) is not None and st[19] == start and st[0] != "Z"
        }
        if not strays:
            break
        for pgid in strays:
            family |= {p: v for p, v in descendants(pgid).items() if p not in family}
            stop_group(pgid)
    with contextlib.suppress(ValueError):
        _started.remove(proc)


def stop_all() -> None:
    for proc in list(_started):
        stop(proc)


@contextlib.contextmanager
def running(
    argv: list[str], cwd: Path, log: Path, stdin: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn(argv, cwd, log, stdin)
    try:
        yield proc
    finally:
        stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- HTTP


def fetch(port: int) -> str:
    """GET / on a fresh connection: the body of a 200, else RequestFailed naming why."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
    except ConnectionRefusedError:
        raise RequestFailed("refused") from None
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        raise RequestFailed("reset") from None
    except TimeoutError:
        raise RequestFailed("timeout") from None
    except (OSError, http.client.HTTPException) as e:
        raise RequestFailed(type(e).__name__) from None
    finally:
        conn.close()
    if resp.status != 200:
        raise RequestFailed(f"HTTP {resp.status}")
    return body


def log_tail(log: Path, lines: int = 3) -> str:
    """The log's last lines, without the servers' access-log lines."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    text = [line.strip() for line in text if line.strip() and '"GET / HTTP' not in line]
    return " / ".join(text[-lines:]) or "no output"


@dataclass
class Served:
    """The app as served by a running tool: save a new version, wait for it to answer."""

    app: App
    appdir: Path
    record: Path  # where each import of app.py appends a line
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    n: int = 0  # the version saved last

    def wait(self, since: float, timeout: float) -> float | None:
        """Poll GET / every POLL_S until version n answers: the seconds since `since`, or None after
        `timeout`. RowFailed if the tool exits (NotAvailable: at once, with a usage error)."""
        want, deadline, tick = version(self.n), since + timeout, since
        while True:
            with contextlib.suppress(RequestFailed):
                if fetch(self.port) == want:
                    return time.monotonic() - since
            if self.proc.poll() is not None:
                code = self.proc.returncode
                if code == 2 and self.n == 0:
                    raise NotAvailable(f"exited 2 at start (usage error): {log_tail(self.log, 1)}")
                raise RowFailed(f"{self.what()}: the tool exited {code}: {log_tail(self.log)}")
            now = time.monotonic()
            if now > deadline:
                return None
            tick = max(tick + POLL_S, now)
            time.sleep(max(0.0, tick - time.monotonic()))

    def save(self, timeout: float) -> float | None:
        """Save the next version: save -> it answers, in seconds, or None after `timeout`."""
        self.n += 1
        t0 = time.monotonic()
        save(self.appdir, self.app.source(self.n, self.record))
        return self.wait(t0, timeout)

    def what(self) -> str:
        return f"save {self.n}" if self.n else "start"

    def not_answering(self, what: str = "") -> RowFailed:
        what = what or f"{self.what()}: {version(self.n)} not answering within {ANSWER_TIMEOUT_S:.0f} s"
        return RowFailed(f"{what}; its log ends: {log_tail(self.log)}")


class Poller(threading.Thread):
    """GET / every POLL_S until stopped, counting the failures by reason."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.total = 0
        self.failures: Counter[str] = Counter()
        self._halt = threading.Event()

    def run(self) -> None:
        tick = time.monotonic()
        while not self._halt.is_set():
            try:
                fetch(self.port)
            except RequestFailed as e:
                self.failures[e.reason] += 1
            self.total += 1
            tick = max(tick + POLL_S, time.monotonic())
            self._halt.wait(max(0.0, tick - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(REQUEST_TIMEOUT_S + 1)


# --------------------------------------------------------------------------- one row


@dataclass
class Row:
    tool: Tool
    app: App
    command: str
    samples: list[float] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    starts: int = 0
    missed: int = 0  # warm-up saves not served (made again)
    said: str = ""  # what the tool's output says of it (Tool.says)
    note: str = ""  # why there are no numbers

    def cells(self) -> list[str]:
        if self.note:
            note = self.note if len(self.note) <= NOTE_MAX else self.note[: NOTE_MAX - 3] + "..."
            return [self.command, self.app.name, note, "-", "-", self.notes()]
        ms = sorted(s * 1000 for s in self.samples)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        failed = sum(self.failed.values())
        why = f" ({', '.join(f'{n} {r}' for r, n in self.failed.most_common())})" if failed else ""
        return [
            self.command,
            self.app.name,
            f"{statistics.median(ms):.0f} / {p95:.0f} ms",
            f"{failed:,} / {self.requests:,}{why}",
            f"{self.starts / len(self.samples):.2f}",
            self.notes(),
        ]

    def notes(self) -> str:
        missed = f"{self.missed} warm-up save(s) not noticed, made again" if self.missed else ""
        return "; ".join(n for n in (self.said, missed) if n)


def save(appdir: Path, text: str) -> None:
    """Atomic save, as editors do: a temporary file (not *.py) renamed onto app.py."""
    tmp = appdir / "app.py.tmp"
    tmp.write_text(text)
    os.replace(tmp, appdir / "app.py")


def count_lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def warm_up(s: Served) -> int:
    """WARMUP saves that get served; one not served within WARMUP_RETRY_S is made again (a tool may
    start watching app.py a while after the server first answers). Returns the saves missed."""
    missed, served = 0, 0
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while served < WARMUP:
        if s.save(WARMUP_RETRY_S) is not None:
            served += 1
            time.sleep(SETTLE_S)
        elif time.monotonic() > deadline:
            raise s.not_answering(f"warm-up: none of {missed + 1} saves noticed in {ANSWER_TIMEOUT_S:.0f} s")
        else:
            missed += 1
    return missed


def run_row(tool: Tool, exe: str, app: App, tmp: Path, saves: int) -> Row:
    work = Path(tempfile.mkdtemp(prefix=f"{tool.name}-{app.name}-", dir=tmp))
    appdir, record, log = work / "app", work / "starts", work / "tool.log"
    appdir.mkdir()
    app.lay_out(appdir)
    port = free_port()
    row = Row(tool, app, shown(tool, app))
    stdin = None
    if tool.stdin is not None:
        stdin = work / "stdin"
        stdin.write_text(tool.stdin)
    save(appdir, app.source(0, record))
    poller = Poller(port)
    try:
        with running(tool.argv(exe, app, str(port)), appdir, log, stdin) as proc:
            s = Served(app, appdir, record, port, proc, log)
            if s.wait(time.monotonic(), ANSWER_TIMEOUT_S) is None:
                raise s.not_answering()
            row.missed = warm_up(s)
            first = count_lines(record)
            poller.start()
            for _ in range(saves):
                took = s.save(ANSWER_TIMEOUT_S)
                if took is None:
                    raise s.not_answering()
                row.samples.append(took)
                time.sleep(SETTLE_S)
            poller.stop()
            row.starts = count_lines(record) - first
    except NotAvailable as e:
        row.note = f"not available: {e}"
    except RowFailed as e:
        row.note = f"failed: {e}"
    finally:
        if poller.is_alive():
            poller.stop()
        if tool.says and log.exists() and (said := re.search(tool.says, log.read_text(errors="replace"))):
            row.said = said.group(0)
    row.failed, row.requests = poller.failures, poller.total
    return row


# --------------------------------------------------------------------------- floors


def interpreter_floor(apps: list[App], tmp: Path) -> str:
    """Launch -> the code done, in a fresh venv interpreter (its exit, ~0.1 s for flask, is not counted):
    `pass`, then importing each app's framework."""
    parts = []
    for code in ("pass", *(f"import {app.framework}" for app in apps)):
        argv = [sys.executable, "-c", f"{code}\nimport time\nprint(time.monotonic())"]
        times = []
        for i in range(FLOOR_RUNS + 1):  # the first run warms the caches and writes the .pyc files
            t0 = time.monotonic()
            r = subprocess.run(
                argv,
                env=child_env(),
                cwd=tmp,
                capture_output=True,
                timeout=30,
                check=False,
                start_new_session=True,
            )
            if r.returncode != 0:
                break
            if i:
                times.append(float(r.stdout) - t0)  # CLOCK_MONOTONIC is system-wide
        took = f"{statistics.median(times) * 1000:.0f} ms" if times else "failed"
        parts.append(f"`python -c {shlex.quote(code)}` {took}")
    return f"interpreter start, launch -> code done (venv python, median of {FLOOR_RUNS}): " + ", ".join(
        parts
    )


def server_floor(apps: list[App], tmp: Path) -> str:
    parts = []
    for app in apps:
        times = []
        try:
            for _ in range(COLD_RUNS):
                work = Path(tempfile.mkdtemp(prefix=f"alone-{app.name}-", dir=tmp))
                app.lay_out(work)
                save(work, app.source(0, work / "starts"))
                port = free_port()
                log = work / "server.log"
                t0 = time.monotonic()
                with running(app.server(str(port)), work, log) as proc:
                    s = Served(app, work, work / "starts", port, proc, log)
                    took = s.wait(t0, ANSWER_TIMEOUT_S)
                    if took is None:
                        raise s.not_answering()
                    times.append(took)
            parts.append(f"{app.name} {statistics.median(times) * 1000:.0f} ms")
        except RowFailed as e:
            parts.append(f"{app.name} failed: {e}")
    return f"server alone, launch -> first answer (median of {COLD_RUNS}): " + ", ".join(parts)


# --------------------------------------------------------------------------- main


def table(rows: list[Row]) -> str:
    head = [
        "tool (command, run in the app's directory)",
        "app",
        "save -> new code answering, median / p95",
        f"failed requests (GET every {POLL_S * 1000:.0f} ms)",
        "server starts per save",
        "notes",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{row.tool.name}: `{row.command}`", *row.cells()[1:]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--saves", type=int, default=20, help="measured saves per row (default 20)")
    ap.add_argument("--quick", action="store_true", help="5 saves per row")
    ap.add_argument("--apps", default=",".join(APPS), help="comma-separated apps (default: all)")
    ap.add_argument("--tools", default=",".join(TOOL_NAMES), help="comma-separated rows (default: all)")
    ap.add_argument("--nodemon", help="the nodemon executable (default: nodemon on PATH)")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    saves = 5 if args.quick else args.saves
    if saves < 1:
        ap.error("--saves must be at least 1")
    apps = [APPS[a] for a in split(args.apps, tuple(APPS), "apps", ap)]
    tools = [t for name in split(args.tools, TOOL_NAMES, "tools", ap) for t in TOOLS if t.name == name]

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background with SIGINT ignored
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="watchd-restart-"))
    try:
        floors = [interpreter_floor(apps, tmp), server_floor(apps, tmp)]
        for line in floors:
            print(line, flush=True)
        for tool in tools:
            exe = find(tool, args.nodemon)
            for app in apps:
                if app.name not in tool.apps:
                    continue
                print(f"{tool.name} / {app.name}: ", end="", flush=True)
                why = unavailable(tool, exe, app)
                if why or exe is None:
                    row = Row(tool, app, shown(tool, app), note=f"skipped: {why}")
                else:
                    row = run_row(tool, exe, app, tmp, saves)
                rows.append(row)
                print(row.note or ", ".join(c for c in row.cells()[2:] if c), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    out = (
        f"{table(rows)}\n\n{saves} saves per row (+{WARMUP} warm-up discarded), {SETTLE_S:g} s settling "
        "after each.\nFloors: " + "; ".join(floors) + "."
    )
    print()
    print(out)
    if args.record:
        record("restart.py", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
