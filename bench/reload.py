"""Save -> new code answering: watchd + HUP against the servers' own reloaders, side by side.

    .venv/bin/python bench/reload.py [--saves N] [--only django,flask,uwsgi] [--tools ROW[,..]] [--record]

Run by hand, not by CI. Each row runs alone, one after the other, in a fresh temporary app directory,
on a fresh ephemeral port of 127.0.0.1, with a server of 2 workers started for it (the command lines
of tests/helpers/servers.py).

Apps (each answers GET / with a version string):
- django: a real `python -m django startproject mysite` project; mysite/views.py holds VERSION and
  the view, mysite/urls.py imports it, and mysite/wsgi.py ends with the README's two lines that load
  the URLconf when a worker starts (`from django.urls import get_resolver` /
  `get_resolver().url_patterns`). gunicorn serves mysite.wsgi:application; a save rewrites
  mysite/views.py.
- flask: a minimal Flask app (app.py) under gunicorn (app:app).
- uwsgi: the plain WSGI app of tests/helpers/servers.py (app.py) under uWSGI (--wsgi-file app.py).

Rows (gunicorn apps: the first four; uwsgi: watchd and py-autoreload):
- watchd: `watchd --config config/gunicorn.yaml` (or config/uwsgi.yaml) as shipped, with APP_DIR and
  GUNICORN_PIDFILE / UWSGI_PIDFILE in its environment: `check: python` compiles the changed files
  in-process, then HUP to the master, which starts new workers on the new code.
- watchd-compileall: the same config with its `check:` line replaced by
  `check: python3 -m compileall -q --invalidation-mode checked-hash .` (a new interpreter per
  check: how the check ran before it was done in-process).
- reload-inotify: `gunicorn --reload --reload-engine inotify` (each worker exits when a directory of
  a module it imported changes; the master starts a new one). Needs the `inotify` package in the
  venv (`.venv/bin/pip install inotify`); gunicorn's default engine (auto) is this one when that is
  installed, else poll. The reference of the gunicorn apps' ratio column.
- reload-poll: `gunicorn --reload --reload-engine poll` (each worker stats its modules every second).
- py-autoreload: `uwsgi --py-autoreload 1` (uWSGI stats the modules every second and reloads the
  whole instance gracefully). The reference of the uwsgi app's ratio column.

Each save rewrites the file in place (as `Path.write_text` does: truncate, write, close), after
time.monotonic() is taken; GET / is then sent every 5 ms, on a new connection each time, until a 200
carries the new version: that time is the sample. Each version is one byte longer than the one before:
a __pycache__ .pyc is validated by the source's size and its mtime in whole seconds, and the servers'
own reloaders (unlike watchd, which removes the changed files' timestamp .pyc before the signal) could
otherwise load the old code after a same-size save within the same second.

Between saves the reload must have settled: the master's worker PIDs unchanged and every answer the
new version for 1 s (gunicorn --reload replaces each worker on its own, with the poll engine up to a
second apart), and for the watchd rows watchd's own log line confirming the reload. For the two
reloaders that poll every second (reload-poll, py-autoreload) a random 0-1 s is added: after a fixed
wait, every save would come at the same point of their cycle (uwsgi --py-autoreload 1 then had a
median of 2.08 s, just after a scan every time, where a random phase gives 1.6 s). The others react
to the event or the signal, whenever it comes. The first save of a row (WARMUP) is discarded. A save
not served within 20 s ends its row (reported as failed).

PYTHONDONTWRITEBYTECODE is removed from the environment of every process started here: with it, every
worker start recompiles the modules it imports and the reload times are distorted.

--record appends the table, the date, `uname -a` and the CPU model to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent  # the venv's bin: watchd, gunicorn, uwsgi, python3
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from helpers.apps import FLASK_APP  # noqa: E402
from helpers.procs import Watchd  # noqa: E402
from helpers.servers import APP as WSGI_APP  # noqa: E402
from run import interrupt, record, split  # noqa: E402

HOST = "127.0.0.1"
POLL_S = 0.005  # GET / cadence while waiting for the new version
REQUEST_TIMEOUT_S = 2.0
ANSWER_TIMEOUT_S = 20.0  # server start -> first answer, and save -> new version answering
SETTLE_S = 1.0  # workers unchanged and the new version answering this long before the next save
SETTLE_TIMEOUT_S = 20.0
JITTER_S = 1.0  # for a polling reloader, plus a random 0 .. JITTER_S: saves at any phase of its 1 s scans
CONFIRM_TIMEOUT_S = 10.0  # watchd's confirm_timeout in the shipped configs
WARMUP = 1
DEFAULT_SAVES = 10
COMPILEALL = "python3 -m compileall -q --invalidation-mode checked-hash ."

DJANGO_VIEWS = """\
from django.http import HttpResponse

VERSION = "{version}"


def index(request):
    return HttpResponse(VERSION)
"""

DJANGO_URLS = """\
from django.contrib import admin
from django.urls import path

from mysite.views import index

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", index),
]
"""

# the README's "Django: load the URLconf at start"
DJANGO_WSGI_TAIL = """
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # import the URLconf and the views now, not at the first request
"""


class RowFailed(Exception):
    """The row could not be measured (the reason is the message)."""


# --------------------------------------------------------------------------- apps and rows


@dataclass(frozen=True)
class App:
    name: str
    label: str
    server: str  # gunicorn | uwsgi
    target: str  # gunicorn's module:callable, or uWSGI's --wsgi-file
    source: str  # the file each save rewrites, relative to the app directory
    template: str  # its text, with {version}
    reference: str  # the row the ratio column divides by

    def text(self, n: int) -> str:
        """The source answering version(n), one byte longer than version n - 1's."""
        return f"# {'.' * n}\n" + self.template.format(version=version(n))


def version(n: int) -> str:
    return f"v{n}"


APPS = {
    "django": App(
        "django",
        "Django (gunicorn)",
        "gunicorn",
        "mysite.wsgi:application",
        "mysite/views.py",
        DJANGO_VIEWS,
        "reload-inotify",
    ),
    "flask": App("flask", "Flask (gunicorn)", "gunicorn", "app:app", "app.py", FLASK_APP, "reload-inotify"),
    "uwsgi": App("uwsgi", "plain WSGI app (uWSGI)", "uwsgi", "app.py", "app.py", WSGI_APP, "py-autoreload"),
}


@dataclass(frozen=True)
class Tool:
    name: str
    servers: tuple[str, ...]  # the servers it applies to
    server_args: tuple[str, ...] = ()  # added to the server's command line
    check: str | None = None  # watchd rows: the config's check (None: not a watchd row)
    polls: bool = False  # the reloader looks for changes every second

    @property
    def watchd(self) -> bool:
        return self.check is not None


TOOLS = (
    Tool("watchd", ("gunicorn", "uwsgi"), check="python"),
    Tool("watchd-compileall", ("gunicorn",), check=COMPILEALL),
    Tool("reload-inotify", ("gunicorn",), ("--reload", "--reload-engine", "inotify")),
    Tool("reload-poll", ("gunicorn",), ("--reload", "--reload-engine", "poll"), polls=True),
    Tool("py-autoreload", ("uwsgi",), ("--py-autoreload", "1"), polls=True),
)
TOOL_NAMES = tuple(t.name for t in TOOLS)


def server_argv(app: App, appdir: Path, pidfile: Path, port: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The server's command line: that of tests/helpers/servers.py, plus `extra`."""
    if app.server == "gunicorn":
        return [
            str(BIN / "gunicorn"),
            *extra,
            "--pid", str(pidfile),
            "--no-control-socket",
            "--chdir", str(appdir),
            "--workers", "2",
            "--graceful-timeout", "5",
            "--bind", f"{HOST}:{port}",
            app.target,
        ]  # fmt: skip
    return [
        str(BIN / "uwsgi"),
        *extra,
        "--master",
        "--pidfile", str(pidfile),
        "--die-on-term",
        "--http-socket", f"{HOST}:{port}",
        "--chdir", str(appdir),
        "--wsgi-file", app.target,
        "--callable", "app",
        "--processes", "2",
        "--worker-reload-mercy", "5",
    ]  # fmt: skip


def config_for(app: App, tool: Tool, work: Path) -> Path:
    """The shipped config of the app's server, or a copy of it with another check."""
    shipped = ROOT / "config" / f"{app.server}.yaml"
    if tool.check == "python":
        return shipped
    text, n = re.subn(r"(?m)^(\s+)check: python\s*$", rf"\g<1>check: {tool.check}", shipped.read_text())
    if n != 1:
        raise RowFailed(f"{shipped.name} has no single `check: python` line to replace")
    copy = work / f"{app.server}-{tool.name}.yaml"
    copy.write_text(text)
    return copy


def shown(app: App, tool: Tool) -> str:
    """The row's command as the table shows it (markdown)."""
    if tool.watchd:
        env = f"APP_DIR=APP_DIR {app.server.upper()}_PIDFILE=PIDFILE"
        if tool.check == "python":
            return f"`{env} watchd --config config/{app.server}.yaml`"
        return (
            f"`{env} watchd --config {app.server}-{tool.name}.yaml`: config/{app.server}.yaml "
            f"with `check: {tool.check}`"
        )
    return f"`{app.server} {shlex.join(tool.server_args)}`"


def server_shown(app: App) -> str:
    argv = server_argv(app, Path("APP_DIR"), Path("PIDFILE"), "PORT")
    return shlex.join([Path(argv[0]).name, *argv[1:]])


def unavailable(tool: Tool) -> str | None:
    """Why the row cannot run here, or None."""
    if tool.name == "reload-inotify" and importlib.util.find_spec("inotify") is None:
        return "the inotify package is not installed (.venv/bin/pip install inotify)"
    return None


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


# --------------------------------------------------------------------------- processes

_started: list[subprocess.Popen[bytes]] = []


def spawn(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own session (its own process group) and remember it."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_env(),
            start_new_session=True,
        )
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """`sig` to the process group, KILL it if it lingers (and any worker left behind in it)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ValueError):
        _started.remove(proc)


def stop_all() -> None:
    for proc in list(_started):
        stop(proc)


def workers(pid: int) -> frozenset[int]:
    """The live children of pid (/proc/PID/task/*/children)."""
    kids: set[int] = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(FileNotFoundError, ProcessLookupError),
                open(f"/proc/{pid}/task/{tid}/children") as f,
            ):
                kids.update(int(x) for x in f.read().split())
    return frozenset(kids)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get(port: int) -> str | None:
    """GET / on a new connection: the body of a 200, or None."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return body if resp.status == 200 else None


def wait_version(
    port: int, want: str, since: float, timeout: float, alive: Callable[[], bool]
) -> float | None:
    """GET / every POLL_S until `want` answers: the seconds since `since`, or None after `timeout`."""
    deadline, tick = since + timeout, since
    while True:
        if get(port) == want:
            return time.monotonic() - since
        now = time.monotonic()
        if now > deadline or not alive():
            return None
        tick = max(tick + POLL_S, now)
        time.sleep(max(0.0, tick - time.monotonic()))


def settle(master: int, port: int, want: str, quiet: float = SETTLE_S) -> bool:
    """Until the master's workers are unchanged and every answer is `want`, for `quiet` seconds."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S + quiet
    kids, since = workers(master), time.monotonic()
    while time.monotonic() < deadline:
        now_kids = workers(master)
        if now_kids != kids or len(now_kids) < 2 or get(port) != want:
            kids, since = now_kids, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
        time.sleep(0.02)
    return False


def log_tail(path: Path, lines: int = 3) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return " / ".join(line.strip() for line in text[-lines:] if line.strip()) or "no output"


# --------------------------------------------------------------------------- one row


@dataclass
class Row:
    app: App
    tool: Tool
    samples: list[float] = field(default_factory=list)  # seconds
    note: str = ""  # why there are no numbers

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def p95(self) -> float:
        ms = sorted(self.samples)
        return ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]  # nearest rank


def make_app(app: App, appdir: Path, tmp: Path) -> None:
    appdir.mkdir()
    if app.name == "django":
        subprocess.run(
            [sys.executable, "-m", "django", "startproject", "mysite", str(appdir)],
            env=child_env(),
            cwd=tmp,
            check=True,
            capture_output=True,
            timeout=60,
        )
        (appdir / "mysite" / "urls.py").write_text(DJANGO_URLS)
        with open(appdir / "mysite" / "wsgi.py", "a") as f:
            f.write(DJANGO_WSGI_TAIL)
    (appdir / app.source).write_text(app.text(0))


def run_row(app: App, tool: Tool, tmp: Path, saves: int) -> Row:
    row = Row(app, tool)
    rng = random.Random(f"{app.name} {tool.name}")  # noqa: S311 (a wait, not a secret)
    work = Path(tempfile.mkdtemp(prefix=f"{app.name}-{tool.name}-", dir=tmp))
    appdir, pidfile, log = work / "app", work / "server.pid", work / "server.log"
    make_app(app, appdir, work)
    port = free_port()
    stop_sig = signal.SIGINT if app.server == "uwsgi" else signal.SIGTERM
    server = spawn(server_argv(app, appdir, pidfile, str(port), tool.server_args), appdir, log)
    w: Watchd | None = None
    try:
        alive: Callable[[], bool] = lambda: server.poll() is None  # noqa: E731
        if wait_version(port, version(0), time.monotonic(), ANSWER_TIMEOUT_S, alive) is None:
            raise RowFailed(
                f"{app.server} did not answer {version(0)} in {ANSWER_TIMEOUT_S:.0f} s: {log_tail(log)}"
            )
        if not settle(server.pid, port, version(0)):
            raise RowFailed(f"{app.server}'s workers did not settle: {log_tail(log)}")
        if tool.watchd:
            env = child_env(APP_DIR=str(appdir), **{f"{app.server.upper()}_PIDFILE": str(pidfile)})
            config = config_for(app, tool, work)
            w = Watchd(["--config", str(config)], work / "watchd.log", cwd=appdir, env=env)
        for n in range(1, WARMUP + saves + 1):
            confirmed = w.log().count("reloaded:") if w else 0
            t0 = time.monotonic()
            (appdir / app.source).write_text(app.text(n))
            took = wait_version(port, version(n), t0, ANSWER_TIMEOUT_S, alive)
            if took is None:
                what = f"save {n}: {version(n)} not answering within {ANSWER_TIMEOUT_S:.0f} s"
                if w is not None:
                    what += f"; watchd's log ends: {log_tail(w.log_path)}"
                raise RowFailed(f"{what}; {app.server}'s log ends: {log_tail(log)}")
            if n > WARMUP:
                row.samples.append(took)
            if w is not None and not w.wait_log("reloaded:", confirmed + 1, CONFIRM_TIMEOUT_S):
                raise RowFailed(f"save {n}: watchd did not confirm the reload: {log_tail(w.log_path)}")
            # a polling reloader: a random extra wait, so the next save comes at any phase of its 1 s
            # scans (a fixed wait after its workers start would always land at the same point)
            quiet = SETTLE_S + (rng.uniform(0, JITTER_S) if tool.polls else 0.0)
            if not settle(server.pid, port, version(n), quiet):
                raise RowFailed(f"save {n}: the reload did not settle in {SETTLE_TIMEOUT_S:.0f} s")
    except RowFailed as e:
        row.note = f"failed: {e}"
    finally:
        if w is not None:
            w.stop()
        stop(server, stop_sig)
    return row


# --------------------------------------------------------------------------- table


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def table(rows: list[Row], saves: int) -> str:
    head = [
        "app (server)",
        "tool: command",
        "save -> new code answering, median",
        "p95",
        "n",
        "median / reference's",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    medians = {(r.app.name, r.tool.name): r.median for r in rows}
    for r in rows:
        what = f"{r.tool.name}: {shown(r.app, r.tool)}"
        if r.note or r.median is None:
            cells = [r.note or "no samples", "-", str(len(r.samples)), "-"]
        else:
            ref = medians.get((r.app.name, r.app.reference))
            ratio = "-" if not ref else f"{r.median / ref:.2f}x"
            if r.tool.name == r.app.reference:
                ratio += " (reference)"
            cells = [ms(r.median), ms(r.p95), str(len(r.samples)), ratio]
        row = [r.app.label, what, *cells]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    servers = {r.app.name: server_shown(r.app) for r in rows}
    notes = [
        "",
        f"{saves} saves per row (+{WARMUP} warm-up discarded), in place, each one byte longer; GET / every "
        f"{POLL_S * 1000:g} ms on a new connection; the next save once workers and answers were unchanged "
        f"for {SETTLE_S:g} s (the polling rows: plus a random 0-{JITTER_S:g} s). Servers (the rows' "
        "options go before these):",
        *(f"- {name}: `{line}`" for name, line in servers.items()),
    ]
    return "\n".join(lines + notes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--saves", type=int, default=DEFAULT_SAVES, help=f"measured saves per row (default {DEFAULT_SAVES})"
    )
    ap.add_argument("--only", default=",".join(APPS), help="comma-separated apps (default: all)")
    ap.add_argument("--tools", default=",".join(TOOL_NAMES), help="comma-separated rows (default: all)")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()
    if args.saves < 1:
        ap.error("--saves must be at least 1")
    apps = [APPS[a] for a in split(args.only, tuple(APPS), "apps", ap)]
    tools = [t for name in split(args.tools, TOOL_NAMES, "rows", ap) for t in TOOLS if t.name == name]

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background with SIGINT ignored
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="watchd-reload-"))
    try:
        for app in apps:
            for tool in tools:
                if app.server not in tool.servers:
                    continue
                print(f"{app.name} / {tool.name}: ", end="", flush=True)
                t0 = time.monotonic()
                why = unavailable(tool)
                row = (
                    Row(app, tool, note=f"not available: {why}")
                    if why
                    else run_row(app, tool, tmp, args.saves)
                )
                rows.append(row)
                result = row.note or f"median {ms(row.median or 0)}, p95 {ms(row.p95)}"
                print(f"{result}  ({time.monotonic() - t0:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    out = table(rows, args.saves)
    print()
    print(out)
    if args.record:
        record("reload.py", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
