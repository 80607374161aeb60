"""Restart mode: a tool runs a small web app as its child and restarts it when app.py changes.

    .venv/bin/python bench/restart.py [--saves N | --quick] [--apps APP[,..]] [--tools NAME[,..]]
                                      [--issue22] [--nodemon PATH] [--record]

Issue 22's table (its apps and rows, 20 saves each, and its goals as ratios of the same run):

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python bench/restart.py --issue22 [--record]

Run by hand, not by CI. Each tool runs alone, one after the other, in a fresh temporary directory
holding only the app's files, on a fresh ephemeral port of 127.0.0.1; the rows are run app by app (an
app's rows close together in time, so its ratios compare like with like). Apps, each answering GET /
with a version string that app.py sets (app.py is the file saved):
- flask: a small Flask app in app.py, `flask --app app run --no-reload --host 127.0.0.1 --port PORT`
- uvicorn: a plain ASGI app in app.py, `uvicorn app:app --host 127.0.0.1 --port PORT`
- fastapi: a FastAPI app in app.py (one `async def` route answering text/plain), served by uvicorn as
  the uvicorn app is
- django: a minimal project of four files: settings.py (DEBUG, ALLOWED_HOSTS, ROOT_URLCONF = "app", no
  apps, middleware or database), manage.py, wsgi.py (the project's WSGI application, as `startproject`
  writes it), and app.py, the URLconf with its one view; `python manage.py runserver 127.0.0.1:PORT
  --noreload`
- django-gunicorn: the same project served by gunicorn, `gunicorn --workers 1 --worker-class sync
  --no-control-socket --bind 127.0.0.1:PORT wsgi:application` (one sync worker; no control socket,
  which gunicorn would otherwise make in the user's runtime directory, shared by all their gunicorns);
  given LISTEN_FDS and LISTEN_PID = its own PID, as under watchd --listen, gunicorn serves fd 3 by
  itself (without --bind)
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
  (2 s) or is not a 200 (the cell says how many of the failures were between restarts, if any were).
  A server that keeps its listening socket across restarts (the Flask, uvicorn and gunicorn reloaders,
  watchd --listen) lets connections wait in the backlog instead of failing; Django's reloader (its
  child binds the port) and Tornado's (it execs itself, which closes the socket) do not keep it.
- slowest request during a restart / between restarts: of that client's requests (from sending to the
  end of the answer, or of the failure: a refused one takes well under a millisecond, a timeout 2 s),
  those under way at some moment from a save to 0.1 s after the new version first answered are during
  a restart (the 0.1 s takes in the old app's exit and the new one's first requests, which may load
  what it imports lazily); the others, about 0.4 s of each 0.5 s settling, are between restarts.
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
`python -c pass` and, each alone, the imports of the apps run (median of 10; the interpreter's exit,
about 0.1 s after importing flask, is not counted): `import flask`; `import uvicorn`; `import fastapi`;
`import tornado.web`; `import django` (the package's __init__ only) and `import
django.core.management.commands.runserver` (the command's module, which imports its server,
django.core.servers.basehttp, and the WSGI handler; the first request loads the URL resolver and the
view); `import django.core.wsgi` (what wsgi.py imports), `import gunicorn` (its __init__ only) and
`import gunicorn.app.wsgiapp` (what the gunicorn command loads before it forks its worker); and each
server alone, with the command above, launch -> first answer (median of 5). Then the interpreter's
version, the frameworks' versions, the CPUs this process may use (nproc) and the load averages at the
start and the end of the run. After the table, one line per app gives issue 22's goals as ratios of
rows of the same run: warm / cold median (watchd / watchd-cold, watchd-listen / watchd-listen-cold;
goal <= 0.25x for Flask and Django), the fastest watchd row / the framework's own reloader, the slowest
request during / between restarts of each watchd row (goal <= 2x; a row with failed requests, which
are quick when refused, does not meet it), failed requests with --listen (goal 0).

Rows (debounce 50 ms where the row's command line sets one; otherwise each tool's defaults):
- watchd: `watchd -v -p '*.py' --debounce 50ms -- SERVER` (the server binds the port itself); warm: a
  Python app restarts from watchd's fork server (`preload: auto`, the default) once it is ready,
  which it is before the measured saves (the 2 warm-up saves and their settling come first); -v
  makes watchd say of each start `warm (fork, N modules preloaded)` or `cold: why`, and the notes
  count what it said of the measured restarts
- watchd-cold: the same with `--no-preload`: every restart is a new interpreter
- watchd-imports: `watchd --debounce 50ms -- SERVER`, every app: with no PATH and no pattern and a Python
  program (python, or a console script whose #! names it: flask, uvicorn), watchd's default is
  watch_imports: every file under . counts (less the built-in ignores: app.py.tmp is one), and so does
  every file the app imported (reported by watchd's sitecustomize hook on the app's PYTHONPATH)
- watchd-listen: `watchd -v -p '*.py' --listen 127.0.0.1:PORT -- SERVER'`: watchd binds the port and
  passes it as fd 3, and SERVER' serves that socket: `flask --app app run --no-reload` (with
  `--listen-env werkzeug` before the --), `uvicorn app:app --fd 3` (uvicorn, fastapi), gunicorn without
  --bind (django-gunicorn), `python app.py` (Tornado); no django row: runserver cannot serve an
  inherited socket; warm, as the watchd row
- watchd-listen-cold: the same with `--no-preload`
- flask-reload: `flask --app app run --reload --host 127.0.0.1 --port PORT`, Werkzeug's reloader as it
  chooses it (watchdog when watchdog is installed, else stat; the notes have the line naming it)
- flask-stat, flask-watchdog: Werkzeug's own reloader, through
  `app.run(..., use_reloader=True, reloader_type="stat"|"watchdog")` (`flask run --reload` has no
  option for the type: it takes watchdog when that is installed)
- uvicorn-reload: `uvicorn --reload` (uses watchfiles when it is installed, else polls every 0.25 s;
  the notes say which), for the uvicorn and fastapi apps
- gunicorn-reload: `gunicorn ... --reload`: the worker watches the files of the modules it imported
  (the `inotify` engine when the inotify package is installed, else a stat poll every second; the notes
  say which) and exits on a change; the arbiter, which holds the socket, forks a new worker
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
- flask, uvicorn, django, tornado, gunicorn, fastapi, hupper, watchfiles, inotify (gunicorn's engine):
  `.venv/bin/pip install -e '.[test,bench]'` (the test extra has the frameworks, the bench extra the rest)
  (watchdog, for flask-watchdog, hupper and watchmedo, comes with watchd)
- nodemon: Node.js and npm, then in a directory DIR outside the repository `npm install --prefix DIR nodemon`,
  and `--nodemon DIR/node_modules/.bin/nodemon` (or nodemon on PATH)
- entr: `apt-get install entr`

--record appends what the run printed last (the table, the goals, the floors, the versions and the
load) to bench/RESULTS.md, with the date, the command line, `uname -a`, the CPU model and count.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import os
import platform
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
from importlib import metadata
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
RESTART_TAIL_S = 0.1  # a restart lasts from the save to 0.1 s after the new version first answered
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

# the project's WSGI application, as `startproject` writes it: what gunicorn serves
DJANGO_WSGI = """import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
application = get_wsgi_application()
"""

DJANGO_SETTINGS = """DEBUG = True
SECRET_KEY = "restart-bench"
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "app"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
"""

FASTAPI_APP = """
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def index():
    return VERSION
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
    imports: tuple[str, ...]  # modules the server imports: `import NAME` is a floor; each package is needed
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
    def packages(self) -> tuple[str, ...]:
        """What the app needs installed (pip install NAME)."""
        return tuple(dict.fromkeys(m.split(".")[0] for m in self.imports))

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


DJANGO_FILES = (("manage.py", DJANGO_MANAGE), ("settings.py", DJANGO_SETTINGS), ("wsgi.py", DJANGO_WSGI))
# gunicorn: one sync worker (its defaults, said aloud); no control socket (by default gunicorn 24+
# makes one in $XDG_RUNTIME_DIR or ~/.gunicorn, shared by every gunicorn of the user)
GUNICORN = ("--workers", "1", "--worker-class", "sync", "--no-control-socket")

APPS = {
    "flask": App(
        name="flask",
        body=FLASK_APP,
        imports=("flask",),
        program="flask",
        args=lambda port: ["--app", "app", "run", "--no-reload", "--host", HOST, "--port", port],
        inherit_args=("--app", "app", "run", "--no-reload"),
        listen_opts=("--listen-env", "werkzeug"),
    ),
    "uvicorn": App(
        name="uvicorn",
        body=ASGI_APP,
        imports=("uvicorn",),
        program="uvicorn",
        args=lambda port: ["app:app", "--host", HOST, "--port", port],
        inherit_args=("app:app", "--fd", "3"),
    ),
    "django": App(
        name="django",
        body=DJANGO_APP,
        # the command's module imports its server (django.core.servers.basehttp) and WSGI handler
        imports=("django", "django.core.management.commands.runserver"),
        program="python",
        script="manage.py",
        args=lambda port: ["runserver", f"{HOST}:{port}", "--noreload"],
        inherit_args=None,  # runserver always binds the address it is given
        files=DJANGO_FILES,
    ),
    # the same project served by gunicorn; given LISTEN_FDS and LISTEN_PID = its own PID (watchd
    # --listen), gunicorn's arbiter serves fds 3.. instead of binding (gunicorn/systemd.py, arbiter.py)
    "django-gunicorn": App(
        name="django-gunicorn",
        body=DJANGO_APP,
        imports=("django.core.wsgi", "gunicorn", "gunicorn.app.wsgiapp"),
        program="gunicorn",
        args=lambda port: [*GUNICORN, "--bind", f"{HOST}:{port}", "wsgi:application"],
        inherit_args=(*GUNICORN, "wsgi:application"),
        files=DJANGO_FILES,
    ),
    "fastapi": App(
        name="fastapi",
        body=FASTAPI_APP,
        imports=("fastapi", "uvicorn"),
        program="uvicorn",
        args=lambda port: ["app:app", "--host", HOST, "--port", port],
        inherit_args=("app:app", "--fd", "3"),
    ),
    "tornado": App(
        name="tornado",
        body=TORNADO_APP,
        imports=("tornado.web",),
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
    says: str = ""  # a regex: its first match (its group 1 if it has one) in the tool's output goes to the
    # notes (the reloader it took)
    verbose: bool = False  # watchd -v: the notes count the measured restarts it says were warm, and cold
    own: bool = False  # the framework's own reloader

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
    Tool("watchd", "watchd", "EXE -v -p '*.py' --debounce 50ms -- SERVER", verbose=True),
    Tool("watchd-cold", "watchd", "EXE -v -p '*.py' --debounce 50ms --no-preload -- SERVER", verbose=True),
    # no PATH, no pattern, a Python program (every app here: flask and uvicorn are console scripts whose
    # #! names the venv's python): watchd watches every file under . and the files the app imports
    Tool("watchd-imports", "watchd", "EXE --debounce 50ms -- SERVER"),
    Tool(
        "watchd-listen",
        "watchd",
        "EXE -v -p '*.py' --listen HOST:PORT LISTEN_OPTS -- INHERITING",
        apps=LISTENING,
        verbose=True,
    ),
    Tool(
        "watchd-listen-cold",
        "watchd",
        "EXE -v -p '*.py' --no-preload --listen HOST:PORT LISTEN_OPTS -- INHERITING",
        apps=LISTENING,
        verbose=True,
    ),
    # `flask run --reload`: the reloader Werkzeug chooses by itself (watchdog when it is installed)
    Tool(
        "flask-reload",
        "flask",
        "EXE --app app run --reload --host HOST --port PORT",
        apps=("flask",),
        install="pip install flask",
        says=r"Restarting with \w+(?: \(\w+\))?",
        own=True,
    ),
    Tool("flask-stat", "python", FLASK_RELOAD.format("stat"), apps=("flask",), own=True),
    Tool("flask-watchdog", "python", FLASK_RELOAD.format("watchdog"), apps=("flask",), own=True),
    Tool(
        "uvicorn-reload",
        "uvicorn",
        "SERVER --reload",
        apps=("uvicorn", "fastapi"),
        install="pip install uvicorn",
        says=r"Started reloader process \[\d+\] (using \w+)",
        own=True,
    ),
    # gunicorn's worker watches the files of the modules it imported (inotify when the `inotify`
    # package is installed, else a stat poll once a second) and exits; the arbiter forks a new one
    Tool(
        "gunicorn-reload",
        "gunicorn",
        "SERVER --reload",
        apps=("django-gunicorn",),
        install="pip install gunicorn inotify",
        own=True,
    ),
    Tool(
        "django-autoreload",
        "python",
        "EXE manage.py runserver HOST:PORT",
        apps=("django",),
        install="pip install django",
        says=r"Watching for file changes with \w+",
        own=True,
    ),
    Tool(
        "tornado-autoreload",
        "python",
        "SERVER --autoreload",
        apps=("tornado",),
        install="pip install tornado",
        own=True,
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

# --issue22: issue 22's table: watchd warm (the default, preload: auto) and cold (--no-preload), each
# with the app binding its port and with --listen, and each framework's own reloader, as its users run it
ISSUE22_APPS = ("flask", "django", "django-gunicorn", "fastapi", "tornado")
ISSUE22_TOOLS = (
    "watchd",
    "watchd-cold",
    "watchd-listen",
    "watchd-listen-cold",
    "flask-reload",
    "django-autoreload",
    "gunicorn-reload",
    "uvicorn-reload",
    "tornado-autoreload",
)
# its goals, as ratios of rows of the same run
WARM_PAIRS = (("watchd", "watchd-cold"), ("watchd-listen", "watchd-listen-cold"))
WARM_GOAL = 0.25  # warm / cold median, for Flask and Django
WARM_GOAL_APPS = ("flask", "django", "django-gunicorn")
SLOWEST_GOAL = 2.0  # slowest request during a restart / slowest between restarts


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
    for module in (*app.packages, "watchdog" if tool.name == "flask-watchdog" else None):
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
    restarts: list[tuple[float, float]] = field(default_factory=list)  # (save, new version answered)

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
        took = self.wait(t0, timeout)
        if took is not None:
            self.restarts.append((t0, t0 + took))
        return took

    def what(self) -> str:
        return f"save {self.n}" if self.n else "start"

    def not_answering(self, what: str = "") -> RowFailed:
        what = what or f"{self.what()}: {version(self.n)} not answering within {ANSWER_TIMEOUT_S:.0f} s"
        return RowFailed(f"{what}; its log ends: {log_tail(self.log)}")


@dataclass(frozen=True)
class Request:
    """One GET / of the Poller: when it was sent, how long it took, why it failed (None: a 200)."""

    sent: float
    took: float
    failed: str | None

    def during(self, restarts: Iterable[tuple[float, float]]) -> bool:
        """Whether it was under way at some moment of a restart: from a save to RESTART_TAIL_S after the
        new version first answered."""
        return any(self.sent <= t1 + RESTART_TAIL_S and self.sent + self.took >= t0 for t0, t1 in restarts)


class Poller(threading.Thread):
    """GET / every POLL_S until stopped, counting the failures by reason and keeping every request."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.total = 0
        self.failures: Counter[str] = Counter()
        self.requests: list[Request] = []
        self._halt = threading.Event()

    def run(self) -> None:
        tick = time.monotonic()
        while not self._halt.is_set():
            failed, sent = None, time.monotonic()
            try:
                fetch(self.port)
            except RequestFailed as e:
                self.failures[e.reason] += 1
                failed = e.reason
            self.requests.append(Request(sent, time.monotonic() - sent, failed))
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
    failed_between: int = 0  # of the failed requests, those between restarts
    slowest_during: float | None = None  # the slowest request during a restart (s), failed or not
    slowest_between: float | None = None  # ... between restarts
    starts: int = 0
    missed: int = 0  # warm-up saves not served (made again)
    said: str = ""  # what the tool's output says of it (Tool.says)
    restarts_said: str = ""  # watchd -v: how many of the measured restarts were warm (Tool.verbose)
    note: str = ""  # why there are no numbers

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples and not self.note else None

    def cells(self) -> list[str]:
        if self.note:
            note = self.note if len(self.note) <= NOTE_MAX else self.note[: NOTE_MAX - 3] + "..."
            return [self.command, self.app.name, note, "-", "-", "-", "-", self.notes()]
        ms = sorted(s * 1000 for s in self.samples)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        failed = sum(self.failed.values())
        why = [f"{n} {r}" for r, n in self.failed.most_common()]
        if self.failed_between:
            why.append(f"{self.failed_between} of them between restarts")
        return [
            self.command,
            self.app.name,
            f"{statistics.median(ms):.0f} / {p95:.0f} ms",
            millis(self.slowest_during),
            millis(self.slowest_between),
            f"{failed:,} / {self.requests:,}" + (f" ({', '.join(why)})" if why else ""),
            f"{self.starts / len(self.samples):.2f}",
            self.notes(),
        ]

    def notes(self) -> str:
        missed = f"{self.missed} warm-up save(s) not noticed, made again" if self.missed else ""
        return "; ".join(n for n in (self.said, self.restarts_said, missed) if n)


def millis(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def tally_restarts(text: str, saves: int) -> str:
    """What watchd -v said of the measured restarts: `warm (fork, N modules preloaded)` or `cold: why`."""
    warm = len(re.findall(r"\bwarm \(fork, \d+ modules preloaded\)", text))
    cold = re.findall(r": cold: (.*)", text)
    out = f"warm {warm} of {saves} restarts"
    if cold:
        out += f", cold {len(cold)} ({cold[0].strip()})"
    return out


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
    restarts: list[tuple[float, float]] = []
    try:
        with running(tool.argv(exe, app, str(port)), appdir, log, stdin) as proc:
            s = Served(app, appdir, record, port, proc, log, restarts=restarts)
            if s.wait(time.monotonic(), ANSWER_TIMEOUT_S) is None:
                raise s.not_answering()
            row.missed = warm_up(s)
            first = count_lines(record)
            logged = log.stat().st_size
            poller.start()
            for _ in range(saves):
                took = s.save(ANSWER_TIMEOUT_S)
                if took is None:
                    raise s.not_answering()
                row.samples.append(took)
                time.sleep(SETTLE_S)
            poller.stop()
            row.starts = count_lines(record) - first
            if tool.verbose:
                with open(log, "rb") as f:
                    f.seek(logged)
                    row.restarts_said = tally_restarts(f.read().decode(errors="replace"), saves)
    except NotAvailable as e:
        row.note = f"not available: {e}"
    except RowFailed as e:
        row.note = f"failed: {e}".replace(str(tmp), "TMP")
    finally:
        if poller.is_alive():
            poller.stop()
        if tool.says and log.exists() and (said := re.search(tool.says, log.read_text(errors="replace"))):
            row.said = said.group(said.lastindex or 0)
        if tool.name == "gunicorn-reload":  # gunicorn does not say which engine it took
            row.said = f"engine {'inotify' if importable('inotify.adapters') else 'poll'}"
    row.failed, row.requests = poller.failures, poller.total
    during: list[Request] = []
    between: list[Request] = []
    for r in poller.requests:
        (during if r.during(restarts) else between).append(r)
    row.slowest_during = max((r.took for r in during), default=None)
    row.slowest_between = max((r.took for r in between), default=None)
    row.failed_between = sum(r.failed is not None for r in between)
    return row


# --------------------------------------------------------------------------- floors


def interpreter_floor(apps: list[App], tmp: Path) -> str:
    """Launch -> the code done, in a fresh venv interpreter (its exit, ~0.1 s for flask, is not counted):
    `pass`, then each module the apps' servers import (App.imports), each alone."""
    parts = []
    modules = dict.fromkeys(m for app in apps for m in app.imports)
    for code in ("pass", *(f"import {m}" for m in modules)):
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
        "slowest request during a restart",
        "slowest request between restarts",
        f"failed requests (GET every {POLL_S * 1000:.0f} ms)",
        "server starts per save",
        "notes",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"{row.tool.name}: `{row.command}`", *row.cells()[1:]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def goals(rows: list[Row]) -> list[str]:
    """One line per app: issue 22's goals, as ratios of this run's rows (watchd's rows are the -v ones)."""
    lines = []
    for app in dict.fromkeys(row.app.name for row in rows):
        mine = {row.tool.name: row for row in rows if row.app.name == app and row.median}
        watchd = [row for row in mine.values() if row.tool.verbose]
        parts = []
        warm = [(mine[w], mine[c]) for w, c in WARM_PAIRS if w in mine and c in mine]
        if warm:
            ratios = [ratio(w.median, c.median) for w, c in warm]
            ok = [w.tool.name for (w, _), r in zip(warm, ratios, strict=True) if r <= WARM_GOAL]
            goal = (
                f"goal <= {WARM_GOAL:g}x: met by {', '.join(ok) or 'none'}"
                if app in WARM_GOAL_APPS
                else "no goal"
            )
            parts.append(
                "warm / cold median: "
                + ", ".join(
                    f"{w.tool.name} {r:.2f}x ({millis(w.median)} / {millis(c.median)})"
                    for (w, c), r in zip(warm, ratios, strict=True)
                )
                + f" ({goal})"
            )
        own = [row for row in mine.values() if row.tool.own]
        if own and watchd:
            best = min(watchd, key=lambda row: row.median or 0.0)
            parts.append(
                f"{best.tool.name} / the framework's reloader median: "
                + ", ".join(f"{ratio(best.median, row.median):.2f}x ({row.tool.name})" for row in own)
            )
        slow = [row for row in watchd if row.slowest_during and row.slowest_between]
        if slow:
            ratios = [ratio(row.slowest_during, row.slowest_between) for row in slow]
            # a refused request is quick: a row with failed requests does not meet it
            ok = [
                row.tool.name
                for row, r in zip(slow, ratios, strict=True)
                if r <= SLOWEST_GOAL and not sum(row.failed.values())
            ]
            parts.append(
                "slowest request during / between restarts: "
                + ", ".join(
                    f"{row.tool.name} {r:.2f}x ({millis(row.slowest_during)} / {millis(row.slowest_between)}"
                    + (f"; {n:,} failed" if (n := sum(row.failed.values())) else "")
                    + ")"
                    for row, r in zip(slow, ratios, strict=True)
                )
                + f" (goal <= {SLOWEST_GOAL:g}x, and no failed request: met by {', '.join(ok) or 'none'})"
            )
        listened = [row for row in watchd if "--listen" in row.tool.line]
        if listened:
            failed = [sum(row.failed.values()) for row in listened]
            parts.append(
                "failed with listen: "
                + ", ".join(f"{row.tool.name} {n:,}" for row, n in zip(listened, failed, strict=True))
                + f" (goal 0: {'met' if not any(failed) else 'NOT met'})"
            )
        if parts:
            lines.append(f"- {app}: " + "; ".join(parts))
    return lines


def ratio(a: float | None, b: float | None) -> float:
    assert a is not None and b
    return a / b


def environment(load: tuple[float, float, float]) -> str:
    """The interpreter, the packages the apps run on, the CPUs this process may use, the load averages."""
    versions = []
    for dist in ("flask", "werkzeug", "django", "gunicorn", "fastapi", "starlette", "uvicorn", "tornado"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist} {metadata.version(dist)}")
    now = os.getloadavg()
    return (
        f"Python {platform.python_version()}; {', '.join(versions)}; nproc {len(os.sched_getaffinity(0))}; "
        f"load average (1, 5, 15 min) {' '.join(f'{x:.2f}' for x in load)} at the start, "
        f"{' '.join(f'{x:.2f}' for x in now)} at the end"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--saves", type=int, default=20, help="measured saves per row (default 20)")
    ap.add_argument("--quick", action="store_true", help="5 saves per row")
    ap.add_argument("--apps", help="comma-separated apps (default: all; with --issue22, its apps)")
    ap.add_argument("--tools", help="comma-separated rows (default: all; with --issue22, its rows)")
    ap.add_argument(
        "--issue22",
        action="store_true",
        help=f"issue 22's table: apps {','.join(ISSUE22_APPS)}; rows {','.join(ISSUE22_TOOLS)}",
    )
    ap.add_argument("--nodemon", help="the nodemon executable (default: nodemon on PATH)")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    saves = 5 if args.quick else args.saves
    if saves < 1:
        ap.error("--saves must be at least 1")
    app_names = args.apps or ",".join(ISSUE22_APPS if args.issue22 else APPS)
    tool_names = args.tools or ",".join(ISSUE22_TOOLS if args.issue22 else TOOL_NAMES)
    apps = [APPS[a] for a in split(app_names, tuple(APPS), "apps", ap)]
    tools = [t for name in split(tool_names, TOOL_NAMES, "tools", ap) for t in TOOLS if t.name == name]

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background with SIGINT ignored
    rows: list[Row] = []
    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="watchd-restart-"))
    try:
        floors = [interpreter_floor(apps, tmp), server_floor(apps, tmp)]
        for line in floors:
            print(line, flush=True)
        for app in apps:  # an app's rows one after the other: its ratios compare rows close in time
            for tool in tools:
                if app.name not in tool.apps:
                    continue
                exe = find(tool, args.nodemon)
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
        f"after each; a request is during a restart if it was under way between a save and "
        f"{RESTART_TAIL_S * 1000:.0f} ms after the new code first answered.\n"
        + "".join(f"{line}\n" for line in goals(rows))
        + "Floors: "
        + "; ".join(floors)
        + f".\n{environment(load)}."
    )
    print()
    print(out)
    if args.record:
        record("restart.py", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
