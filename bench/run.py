"""watchd against its baselines: "a watched *.py changes -> SIGHUP reaches the process in a pidfile".

    .venv/bin/python bench/run.py [--quick] [--only SCENARIO[,..]] [--tools TOOL[,..]] [--scale] [--record]

Run by hand, not by CI. Each tool runs alone, one after the other, on the same tree (built once per
scenario under a temporary directory), signalling a small recorder process that appends the
CLOCK_MONOTONIC time (time.monotonic(), system-wide on Linux) of every HUP to a file; the writer
takes time.monotonic() just before each save.

Tools (debounce 50 ms wherever the tool has one):
- watchd: `.venv/bin/watchd -p '*.py' --pidfile PIDFILE --debounce 50ms DIR`
- watchmedo: `watchmedo shell-command --patterns='**/*.py' --recursive
  --command='kill -HUP $(cat PIDFILE)' DIR`
  (no debounce: one shell per event). watchdog 7 matches patterns against the whole path
  (PurePath.full_match), so `--patterns='*.py'` matches nothing below the root: `**/*.py` is needed.
- watchfiles: its Python API in a small script, `watchfiles.watch(DIR, debounce=50, step=50,
  watch_filter=PythonFilter())`, `os.kill(pid, SIGHUP)` once per yielded batch
- inotifywait: `inotifywait -m -r -e close_write,moved_to,create,delete DIR` piped to a dash
  `while read` loop that signals for every *.py line (builtins only: no fork per event)

Every process is started without PYTHONDONTWRITEBYTECODE (with it, each start of a Python tool
recompiles the modules it imports: watchd, installed editable, and the watchfiles script).

"Ready" is measured the same way for every tool: from launch, a probe file in the deepest,
last-made directory is rewritten every 20 ms until a HUP arrives. A debouncing tool only acts once
the writes stop or its maximum delay passes (watchd: --max-delay 50ms in the start-up scenarios, 2s
elsewhere), so the tool's reaction to
continuous writes is then calibrated on the ready tool (same probe, same cadence) and subtracted:
startup = (first HUP - reaction) - launch, i.e. launch -> first write caught, +-20 ms.

Scenarios: latency, idle, startup, scale (only with --scale), storm, ignored, events. --quick makes
every tree 10x smaller, takes 10 saves and idles 5 s. --record appends the table, the date,
`uname -a` and the CPU model to bench/RESULTS.md.

events: CPU per inotify event while a real tree lands in the watched directory. The tree is Django's
package directory from the venv (its files in path order, no __pycache__; the venv's site-packages
if Django is missing). Two cases, each run 3 times per tool (the median is reported), every run on
a fresh, empty directory (but the probe file) watched by a freshly started tool:
- `tar -xf` of a tarball of its first 2,000 files;
- `rsync -a` of its first 4,000 files (all of Django 5.2's 3,662) from a copy on the same disk.
CPU is the utime + stime of the tool's whole process tree (inotifywait: the shell, inotifywait and
the reader), from a snapshot taken once the ready tool has been quiet for 0.3 s to one taken once
its signal arrived and then no signal came and the tree used no CPU (< 1 ms) for 0.5 s; exact
(/proc/PID/task/TID/schedstat) unless a thread exited meanwhile (then 10 ms clock ticks). The
events are counted before the tools run, 3 times per case, each in a pass of its own: a separate
`inotifywait -m -r -e modify,attrib,close_write,moved_from,moved_to,create,delete,...` (the change
events watchd subscribes to; no open/access/close_nowrite, which the counter's own scans of new
directories would add) prints one line per event, counted afterwards. A count can only be low: a
recursive inotify watcher misses what happens in a new directory before its watch there is in
place, and the kernel merges an event into an identical one still unread at the tail of the queue
(a lagging reader gets fewer MODIFY and ATTRIB events); so the most of the 3 is taken, and the
table shows the range. CPU per event = CPU / that count, for every tool alike. The goal
compares watchd with inotifywait alone: `inotifywait -m -r -e close_write,moved_to,create,delete
-o /dev/null` (no reader, no signal), measured in the inotifywait column beside the usual pipeline
with its dash reader. Needs tar, rsync and inotifywait (apt-get install rsync inotify-tools).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv's bin: watchd, watchmedo
DEBOUNCE_MS = 50
WATCHD_MAX_DELAY_S = 2.0  # watchd's default --max-delay, given explicitly
STARTUP_MAX_DELAY_S = 0.05  # for the start-up scenarios: see startup_like()
PROBE_INTERVAL = 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")
TOOLS = ("watchd", "watchmedo", "watchfiles", "inotifywait")
SCENARIOS = ("latency", "idle", "startup", "scale", "storm", "ignored", "events")
WARMUP = 3
EVENTS_RUNS = 3  # each case of the events scenario; the median is reported
INOTIFYWAIT_EVENTS = "close_write,moved_to,create,delete"  # what the inotifywait tool subscribes to
# the change events watchd subscribes to (watchd/inotify.py's WATCH_MASK): what the events scenario counts
CHANGE_EVENTS = "modify,attrib,close_write,moved_from,moved_to,create,delete,delete_self,move_self"

RECORDER = """
import os, signal, sys, time
pidfile, record = sys.argv[1], sys.argv[2]
fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
def note(signum, frame):
    os.write(fd, b"%.6f\\n" % time.monotonic())
signal.signal(signal.SIGHUP, note)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
tmp = pidfile + ".tmp"
with open(tmp, "w") as f:
    f.write("%d\\n" % os.getpid())
os.replace(tmp, pidfile)
while True:
    signal.pause()
"""

WATCHFILES = f"""
import os, signal, sys, watchfiles
pidfile, root = sys.argv[1], sys.argv[2]
for _ in watchfiles.watch(root, debounce={DEBOUNCE_MS}, step={DEBOUNCE_MS},
                          watch_filter=watchfiles.PythonFilter()):
    with open(pidfile) as f:
        os.kill(int(f.read()), signal.SIGHUP)
"""

# dash builtins only (read, case, kill): the reader forks nothing per event
INOTIFY_READER = (
    'while IFS= read -r f; do case "$f" in *.py) read -r pid < "$1"; kill -HUP "$pid";; esac; done'
)

TOOL_LABELS = {
    "watchd": f"watchd (--debounce {DEBOUNCE_MS}ms)",
    "watchmedo": "watchmedo shell-command --patterns='**/*.py' (no debounce)",
    "watchfiles": f"watchfiles (Python API, debounce={DEBOUNCE_MS} step={DEBOUNCE_MS})",
    "inotifywait": "inotifywait -m -r + dash reader (no debounce)",
}

GOALS = {
    "latency": f"p50 <= {DEBOUNCE_MS + 1.5:g} ms, p95 <= {DEBOUNCE_MS + 3} ms",
    "idle": "0.00 s CPU, RSS <= 25 MiB",
    "startup": "<= 1.1x inotifywait, peak RSS <= 25 MiB",
    "scale": "<= 1.1x inotifywait, peak RSS <= 60 MiB",
    "storm": f"exactly 1 signal, after the last write, <= {DEBOUNCE_MS + 20} ms after it",
    "ignored": "ignored trees cost no watches",
    "events": "<= 2x inotifywait's CPU per event",
}


class Failed(Exception):
    """A tool did not do what a scenario needs (it exited, or no signal came in time)."""


# --------------------------------------------------------------------------- processes

_started: list[subprocess.Popen[bytes]] = []

# PYTHONDONTWRITEBYTECODE makes every start of a Python tool recompile the modules it imports
# (watchd installed editable, watchfiles' script): start-up times would be distorted
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def spawn(argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a process in its own session (so its whole group can be stopped) and remember it."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=CHILD_ENV,
            start_new_session=True,
        )
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """TERM the process group, KILL it if it lingers; return the exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    code = proc.wait()
    with contextlib.suppress(ProcessLookupError):  # stray children (a shell's) of a stopped leader
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ValueError):
        _started.remove(proc)
    return code


def stop_all() -> None:
    for proc in list(_started):
        stop(proc)


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def tree(pid: int) -> list[int]:
    """pid and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st is not None:
                children.setdefault(int(st[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the tree, including its reaped children (cutime + cstime)."""
    total = 0
    for p in tree(pid):
        st = _proc_stat(p)
        if st is not None:
            total += int(st[11]) + int(st[12]) + int(st[13]) + int(st[14])
    return total / CLK_TCK


@dataclass(frozen=True)
class CpuSnapshot:
    """The CPU time of a process tree, per process: exact where the kernel allows.

    ticks: utime + stime of the whole process (its exited threads too), clock ticks (10 ms);
    threads: ns on CPU of each live thread (/proc/PID/task/TID/schedstat: exact);
    reaped: cutime + cstime (its children that exited and were waited for), clock ticks.
    """

    ticks: dict[int, int]
    threads: dict[int, dict[int, int]]
    reaped: dict[int, int]


def cpu_snapshot(pid: int) -> CpuSnapshot:
    ticks, threads, reaped = {}, {}, {}
    for p in tree(pid):
        st = _proc_stat(p)
        if st is None:
            continue
        ticks[p], reaped[p] = int(st[11]) + int(st[12]), int(st[13]) + int(st[14])
        tasks: dict[int, int] = {}
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for tid in os.listdir(f"/proc/{p}/task"):
                with (
                    contextlib.suppress(FileNotFoundError, ProcessLookupError),
                    open(f"/proc/{p}/task/{tid}/schedstat") as f,
                ):
                    tasks[int(tid)] = int(f.read().split()[0])
        threads[p] = tasks
    return CpuSnapshot(ticks, threads, reaped)


def cpu_between(a: CpuSnapshot, b: CpuSnapshot) -> float:
    """CPU seconds the tree spent from snapshot a to b.

    Per process, the exact per-thread sum when every thread of a is still alive in b (a thread that
    exited in between took its time out of the per-thread sums), else utime + stime (10 ms ticks).
    A process new in b counts from its start; the children reaped in between count in ticks.
    """
    total = 0.0
    for p, threads in b.threads.items():
        before = a.threads.get(p, {})
        if before.keys() <= threads.keys():
            total += sum(ns - before.get(tid, 0) for tid, ns in threads.items()) / 1e9
        else:
            total += (b.ticks[p] - a.ticks.get(p, 0)) / CLK_TCK
        total += (b.reaped[p] - a.reaped.get(p, 0)) / CLK_TCK
    return total


def status_kib(pid: int, key: str) -> int:
    """Sum of a /proc/PID/status field (VmRSS, VmHWM) over the tree, in KiB."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError), open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
    return total


def inotify_watches(pid: int) -> int:
    """Watches held by the inotify fds of the tree ("inotify wd:" lines of /proc/PID/fdinfo/*)."""
    total = 0
    for p in tree(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            for fd in os.listdir(f"/proc/{p}/fd"):
                with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
                    if os.readlink(f"/proc/{p}/fd/{fd}") != "anon_inode:inotify":
                        continue
                    with open(f"/proc/{p}/fdinfo/{fd}") as f:
                        total += sum(1 for line in f if line.startswith("inotify wd:"))
    return total


class Recorder:
    """The signal target: appends time.monotonic() of every HUP to a file."""

    def __init__(self, work: Path) -> None:
        self.pidfile = work / "server.pid"
        self.record = work / "server.hups"
        self.proc = spawn(
            [sys.executable, "-c", RECORDER, str(self.pidfile), str(self.record)], work / "rec.log"
        )
        deadline = time.monotonic() + 10
        while not self.pidfile.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the recorder did not start")
            time.sleep(0.01)

    def times(self) -> list[float]:
        try:
            return [float(x) for x in self.record.read_text().split()]
        except FileNotFoundError:
            return []

    def wait_after(self, t: float, timeout: float) -> float | None:
        """The first HUP received after monotonic time t, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        while True:
            later = [x for x in self.times() if x > t]
            if later:
                return min(later)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.005)

    def wait_quiet(self, quiet: float, cap: float) -> None:
        """Wait until no HUP arrived for `quiet` seconds (at most `cap` seconds)."""
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            times = self.times()
            last = max(times) if times else 0.0
            if time.monotonic() - last >= quiet:
                return
            time.sleep(min(quiet / 4, 0.1))

    def stop(self) -> None:
        stop(self.proc)


def tool_argv(tool: str, root: Path, pidfile: Path, max_delay_s: float = WATCHD_MAX_DELAY_S) -> list[str]:
    if tool == "watchd":
        return [
            str(BIN / "watchd"), "-p", "*.py", "--pidfile", str(pidfile), "--debounce", f"{DEBOUNCE_MS}ms",
            "--max-delay", f"{max_delay_s * 1000:g}ms", str(root),
        ]  # fmt: skip
    if tool == "watchmedo":
        return [
            str(BIN / "watchmedo"), "shell-command", "--patterns=**/*.py", "--recursive",
            f"--command=kill -HUP $(cat {pidfile})", str(root),
        ]  # fmt: skip
    if tool == "watchfiles":
        return [sys.executable, "-c", WATCHFILES, str(pidfile), str(root)]
    if tool == "inotifywait":
        pipeline = f'inotifywait -m -r -q -e {INOTIFYWAIT_EVENTS} --format "%w%f" "$2" | ' + INOTIFY_READER
        return ["/bin/sh", "-c", pipeline, "sh", str(pidfile), str(root)]
    raise ValueError(tool)


def available(tool: str) -> str | None:
    """Why the tool cannot run here, or None."""
    if tool == "watchfiles":
        r = subprocess.run([sys.executable, "-c", "import watchfiles"], capture_output=True, check=False)
        return None if r.returncode == 0 else "watchfiles not installed (.venv/bin/pip install watchfiles)"
    if tool == "inotifywait":
        return (
            None
            if shutil.which("inotifywait")
            else "inotifywait not installed (apt-get install inotify-tools)"
        )
    if tool == "watchmedo":
        return None if (BIN / "watchmedo").exists() else "watchmedo not found"
    return None


@dataclass
class Session:
    """One tool running on one tree, with its own recorder."""

    tool: str
    root: Path
    work: Path
    max_delay_s: float = WATCHD_MAX_DELAY_S
    rec: Recorder = field(init=False)
    proc: subprocess.Popen[bytes] = field(init=False)
    launched: float = 0.0

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.rec = Recorder(self.work)
        self.launched = time.monotonic()
        self.proc = spawn(
            tool_argv(self.tool, self.root, self.rec.pidfile, self.max_delay_s), self.work / "tool.log"
        )

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = (self.work / "tool.log").read_text(errors="replace")[-600:]
            raise Failed(f"{self.tool} exited {self.proc.returncode}: {tail.strip()}")

    def write_until_hup(self, probe: Path, timeout: float) -> tuple[float, float]:
        """Rewrite probe every 20 ms until a HUP comes; return (first write time, HUP time)."""
        n = len(self.rec.times())
        first = 0.0
        deadline = time.monotonic() + timeout
        i = 0
        while True:
            now = time.monotonic()
            first = first or now
            probe.write_text(f"x = {i}\n")
            i += 1
            times = self.rec.times()
            if len(times) > n:
                return first, min(times[n:])
            if now > deadline:
                raise Failed(f"no signal within {timeout:.0f} s")
            self.check_alive()
            time.sleep(PROBE_INTERVAL)

    def wait_ready(self, probe: Path, timeout: float, *, strict: bool = False) -> float:
        """Launch -> first probe write caught (s), the tool's reaction to continuous writes subtracted."""
        _, hup = self.write_until_hup(probe, timeout)
        self.rec.wait_quiet(0.5, 30)
        reaction = float("inf")
        for _ in range(2):  # the faster of two: a stray slow reaction must not make start-up look faster
            first, hup2 = self.write_until_hup(probe, 30)
            reaction = min(reaction, hup2 - first)
            self.rec.wait_quiet(0.5, 30)
        took = hup - reaction - self.launched
        if took < 0 and strict:
            raise Failed(
                f"inconsistent: first HUP {hup - self.launched:.2f} s after launch, but the ready tool "
                f"took {reaction:.2f} s to react to continuous writes (a delayed wake-up?)"
            )
        return took

    def stop(self) -> None:
        with contextlib.suppress(AttributeError):
            stop(self.proc)
        with contextlib.suppress(AttributeError):
            self.rec.stop()


@contextlib.contextmanager
def session(tool: str, root: Path, work: Path, max_delay_s: float = WATCHD_MAX_DELAY_S) -> Iterator[Session]:
    s = Session(tool, root, work, max_delay_s)
    try:
        s.start()
        yield s
    finally:
        s.stop()


# --------------------------------------------------------------------------- trees


def make_tree(root: Path, files: int, dirs: int, ext: str = ".py") -> Path:
    """`files` files spread over `dirs` directories (two levels, then a deeper chain made last).

    Returns the deepest, last-made directory.
    """
    chain = min(5, max(dirs - 1, 0))
    flat = dirs - chain
    top = max(1, int(flat**0.5))
    made: list[Path] = []
    for i in range(flat):
        d = root / f"d{i % top:04d}" / f"e{i // top:04d}" if i >= top else root / f"d{i:04d}"
        d.mkdir(parents=True, exist_ok=True)
        made.append(d)
    deep = root / "zz"
    for k in range(chain):
        deep = deep / f"z{k}"
        deep.mkdir(parents=True, exist_ok=True)
        made.append(deep)
    for n in range(files):
        (made[n % len(made)] / f"m{n}{ext}").write_text("x = 0\n")
    return made[-1]


def count_dirs(root: Path) -> int:
    return 1 + sum(len(ds) for _, ds, _ in os.walk(root))


# --------------------------------------------------------------------------- scenarios


@dataclass
class Result:
    cells: dict[str, str] = field(default_factory=dict)  # tool -> text
    met: str = "?"
    note: str = ""


@dataclass
class Sizes:
    quick: bool

    def n(self, full: int) -> int:
        return max(1, full // 10) if self.quick else full


def run_tools(
    tools: list[str], fn: Callable[[str], str], result: Result, skip: dict[str, str]
) -> dict[str, str]:
    for tool in tools:
        if tool in skip:
            result.cells[tool] = "n/a"
            continue
        print(f"  {tool} ...", end=" ", flush=True)
        t0 = time.monotonic()
        try:
            result.cells[tool] = fn(tool)
        except Failed as e:
            result.cells[tool] = f"failed: {str(e)[:120]}"
        print(f"{result.cells[tool]}  ({time.monotonic() - t0:.0f} s)", flush=True)
    return result.cells


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def nearest_rank(samples: list[float], q: int) -> float:
    """The q-th percentile by nearest rank: the smallest sample with q% of them at or below it."""
    ordered = sorted(samples)
    return ordered[max(0, -(-q * len(ordered) // 100) - 1)]


def scenario_latency(tmp: Path, sz: Sizes, tools: list[str], skip: dict[str, str]) -> Result:
    files, saves = sz.n(1000), (10 if sz.quick else 40) + WARMUP
    root = tmp / "latency" / "tree"
    root.mkdir(parents=True)
    deepest = make_tree(root, files, max(1, files // 10))
    targets = sorted(root.rglob("*.py"))
    res = Result(note=f"{files:,} files, {saves - WARMUP} saves (+{WARMUP} warm-up discarded)")
    raw: dict[str, tuple[float, float]] = {}

    def one(tool: str) -> str:
        with session(tool, root, tmp / "latency" / tool) as s:
            s.wait_ready(deepest / "probe.py", 120)
            lat: list[float] = []
            rng = random.Random(1)  # noqa: S311 (which file to save, not a secret)
            for i in range(saves):
                target = rng.choice(targets)
                t = time.monotonic()
                target.write_text(f"x = {i}\n")
                hup = s.rec.wait_after(t, 5)
                if hup is None:
                    raise Failed(f"save {i} not signalled within 5 s")
                lat.append((hup - t) * 1000)
                s.rec.wait_quiet(0.15, 5)  # let trailing signals (one per event) pass
            lat = lat[WARMUP:]
            raw[tool] = (statistics.median(lat), pct(lat, 95))
            return f"{raw[tool][0]:.1f} / {raw[tool][1]:.1f} ms"

    run_tools(tools, one, res, skip)
    if "watchd" in raw:
        p50, p95 = raw["watchd"]
        res.met = yes(p50 <= DEBOUNCE_MS + 1.5 and p95 <= DEBOUNCE_MS + 3)
    return res


def scenario_idle(tmp: Path, sz: Sizes, tools: list[str], skip: dict[str, str]) -> Result:
    files, dirs, secs = sz.n(20_000), sz.n(2_000), 5.0 if sz.quick else 30.0
    root = tmp / "idle" / "tree"
    root.mkdir(parents=True)
    deepest = make_tree(root, files, dirs)
    res = Result(note=f"{files:,} files in {dirs:,} dirs, {secs:g} s")
    raw: dict[str, tuple[float, float]] = {}

    def one(tool: str) -> str:
        with session(tool, root, tmp / "idle" / tool) as s:
            s.wait_ready(deepest / "probe.py", 120)
            time.sleep(1.0)  # let the start-up settle
            n = len(s.rec.times())
            before = cpu_seconds(s.proc.pid)
            time.sleep(secs)
            cpu = cpu_seconds(s.proc.pid) - before
            rss = status_kib(s.proc.pid, "VmRSS") / 1024
            s.check_alive()
            extra = len(s.rec.times()) - n
            raw[tool] = (cpu, rss)
            return f"{cpu:.2f} s / {rss:.1f} MiB" + (f" ({extra} stray HUPs!)" if extra else "")

    run_tools(tools, one, res, skip)
    if "watchd" in raw:
        cpu, rss = raw["watchd"]
        res.met = yes(round(cpu, 2) == 0 and rss <= 25)
    return res


def startup_like(
    name: str,
    *,
    tmp: Path,
    files: int,
    dirs: int,
    tools: list[str],
    skip: dict[str, str],
    rss_goal: float,
    ready_timeout: float,
) -> Result:
    root = tmp / name / "tree"
    root.mkdir(parents=True)
    t0 = time.monotonic()
    print(f"  building {files:,} files in {dirs:,} dirs ...", end=" ", flush=True)
    deepest = make_tree(root, files, dirs)
    print(f"{time.monotonic() - t0:.0f} s", flush=True)
    res = Result(note=f"{files:,} files in {dirs:,} dirs; launch -> first write caught / peak RSS")
    raw: dict[str, tuple[float, float]] = {}

    def one(tool: str) -> str:
        # continuous writes never give watchd its 50 ms of quiet: with --max-delay 50ms it acts
        # every 50 ms regardless, so its reaction (subtracted below) is steady
        with session(tool, root, tmp / name / tool, max_delay_s=STARTUP_MAX_DELAY_S) as s:
            # watchmedo never becomes ready on 10,000 directories (its open events flood the
            # kernel queue, the overflow rescan floods it again): give up and say so
            took = s.wait_ready(deepest / "probe.py", ready_timeout, strict=True)
            hwm = status_kib(s.proc.pid, "VmHWM") / 1024
            raw[tool] = (took, hwm)
            return f"{took:.2f} s / {hwm:.1f} MiB"

    run_tools(tools, one, res, skip)
    if "watchd" in raw and "inotifywait" in raw:
        (wd, hwm), (iw, _) = raw["watchd"], raw["inotifywait"]
        res.met = yes(wd <= 1.1 * iw and hwm <= rss_goal) + f" ({wd / iw:.2f}x)"
    elif "watchd" in raw:
        res.met = "? (needs inotifywait)"
    return res


def scenario_startup(tmp: Path, sz: Sizes, tools: list[str], skip: dict[str, str]) -> Result:
    return startup_like(
        "startup",
        tmp=tmp,
        files=sz.n(100_000),
        dirs=sz.n(10_000),
        tools=tools,
        skip=skip,
        rss_goal=25,
        ready_timeout=120,
    )


def scenario_scale(tmp: Path, sz: Sizes, tools: list[str], skip: dict[str, str]) -> Result:
    files, dirs = sz.n(1_000_000), sz.n(100_000)
    need = 1 if sz.quick else 10
    free = shutil.disk_usage(tmp).free / 1e9
    if free < need:
        return Result(
            cells=dict.fromkeys(tools, "n/a"), met="skipped", note=f"skipped: {free:.1f} GB free < {need} GB"
        )
    with open("/proc/sys/fs/inotify/max_user_watches") as f:
        limit = int(f.read())
    if limit < dirs + 1000:
        return Result(
            cells=dict.fromkeys(tools, "n/a"),
            met="skipped",
            note=f"skipped: fs.inotify.max_user_watches = {limit:,} < {dirs:,} directories",
        )
    return startup_like(
        "scale", tmp=tmp, files=files, dirs=dirs, tools=tools, skip=skip, rss_goal=60, ready_timeout=1200
    )


def scenario_storm(tmp: Path, sz: Sizes, tools: list[str], skip: dict[str, str]) -> Result:
    files = sz.n(5_000)
    root = tmp / "storm" / "tree"
    root.mkdir(parents=True)
    deepest = make_tree(root, files, max(1, files // 100))
    targets = sorted(root.rglob("*.py"))
    res = Result(
        note=f"{files:,} files rewritten back to back; signals received / last signal after last write"
    )
    raw: dict[str, tuple[int, float, float]] = {}

    def one(tool: str) -> str:
        with session(tool, root, tmp / "storm" / tool) as s:
            s.wait_ready(deepest / "probe.py", 120)
            n = len(s.rec.times())
            t_first = time.monotonic()
            for i, p in enumerate(targets):
                p.write_text(f"x = {i}\n")
            t_last = time.monotonic()
            s.rec.wait_after(t_first, 30)
            s.rec.wait_quiet(WATCHD_MAX_DELAY_S + 0.5, 300)
            hups = s.rec.times()[n:]
            if not hups:
                raise Failed("no signal")
            raw[tool] = (len(hups), (min(hups) - t_last) * 1000, (max(hups) - t_last) * 1000)
            return f"{len(hups):,} / {raw[tool][2]:+.0f} ms (writes took {(t_last - t_first) * 1000:.0f} ms)"

    run_tools(tools, one, res, skip)
    if "watchd" in raw:
        count, first, last = raw["watchd"]
        res.met = yes(count == 1 and first > 0 and last <= DEBOUNCE_MS + 20)
    return res


def scenario_ignored(tmp: Path, sz: Sizes, tools: list[str], skip: dict[str, str]) -> Result:
    bulk, src = sz.n(50_000), sz.n(1_000)
    root = tmp / "ignored" / "tree"
    root.mkdir(parents=True)
    make_tree(root / "node_modules", bulk // 2, max(1, bulk // 20), ext=".js")
    make_tree(root / ".venv", bulk // 2, max(1, bulk // 20), ext=".py")
    deepest = make_tree(root / "src", src, max(1, src // 10))  # made last
    source_dirs = 1 + count_dirs(root / "src")  # the root and src/...
    res = Result(
        note=f"{bulk:,} files under node_modules/ + .venv/, {src:,} source files in {source_dirs:,} dirs; "
        "startup / inotify watches"
    )
    raw: dict[str, int] = {}

    def one(tool: str) -> str:
        with session(tool, root, tmp / "ignored" / tool, max_delay_s=STARTUP_MAX_DELAY_S) as s:
            took = s.wait_ready(deepest / "probe.py", 300, strict=True)
            watches = inotify_watches(s.proc.pid)
            raw[tool] = watches
            return f"{took:.2f} s / {watches:,} watches"

    run_tools(tools, one, res, skip)
    if "watchd" in raw:
        # + 1: watchd also watches the root's parent directory (for the root being renamed or deleted)
        res.met = yes(raw["watchd"] <= source_dirs + 1) + f" ({source_dirs:,} non-ignored dirs)"
    return res


def source_tree(dest: Path, limit: int) -> tuple[int, int]:
    """Copy a real source tree into dest: Django's package directory from the venv (else the venv's
    site-packages), its first `limit` files in path order, __pycache__ left out. Returns (files, dirs)."""
    spec = importlib.util.find_spec("django")
    base = (
        Path(spec.origin).parent
        if spec is not None and spec.origin
        else Path(sysconfig.get_paths()["purelib"])
    )
    files = 0
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if files == limit:
                return files, count_dirs(dest) - 1
            if name.endswith(".pyc"):
                continue
            src = Path(dirpath, name)
            target = dest / src.relative_to(base.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            files += 1
    return files, count_dirs(dest) - 1


def wait_established(log: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until inotifywait (without -q) has said its watches are in place."""
    deadline = time.monotonic() + timeout
    while "Watches established" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise Failed(f"inotifywait did not start: {log.read_text(errors='replace')[-300:]}")
        time.sleep(0.01)


def count_events(work: Path, op: Callable[[Path], None]) -> int:
    """The change events (CHANGE_EVENTS) op makes in an empty directory, as a separate
    `inotifywait -m -r` sees them, watching alone in a pass of its own.

    An undercount, by more on a loaded machine: events in a new directory before inotifywait's watch
    on it is in place are missed (watchd scans new directories for the files they already hold;
    inotifywait does not), and the kernel merges an event into an identical one still unread at the
    tail of the queue."""
    watched, out, log = work / "count", work / "count.events", work / "count.log"
    watched.mkdir(parents=True)
    argv = ["inotifywait", "-m", "-r", "-e", CHANGE_EVENTS, "--format", "%e", "-o", str(out), str(watched)]
    proc = spawn(argv, log)
    try:
        wait_established(log, proc)
        op(watched)
        size, since = -1, time.monotonic()
        while time.monotonic() - since < 0.5:  # until the output has stopped growing for 0.5 s
            if out.stat().st_size != size:
                size, since = out.stat().st_size, time.monotonic()
            time.sleep(0.05)
    finally:
        stop(proc)
        shutil.rmtree(watched, ignore_errors=True)
    return len(out.read_text().split())


def wait_cpu_quiet(pid: int, quiet: float, cap: float) -> None:
    """Until the tree has used less than 1 ms of CPU in `quiet` seconds (at most `cap` seconds)."""
    deadline = time.monotonic() + cap
    last, since = cpu_snapshot(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = cpu_snapshot(pid)
        if cpu_between(last, now) >= 0.001:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


@contextlib.contextmanager
def watching(
    tool: str, watched: Path, work: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Recorder | None]]:
    """The tool watching `watched`, ready (its first signal came, or inotifywait said so): its process
    and its recorder. Tool "inotifywait-alone": `inotifywait -m -r -e INOTIFYWAIT_EVENTS` printing to
    /dev/null, no reader and no signal."""
    if tool != "inotifywait-alone":
        with session(tool, watched, work) as s:
            s.write_until_hup(watched / "probe.py", 60)
            s.rec.wait_quiet(0.3, 10)
            yield s.proc, s.rec
        return
    log = work / "tool.log"
    argv = ["inotifywait", "-m", "-r", "-e", INOTIFYWAIT_EVENTS, "--format", "%w%f", "-o", os.devnull]
    proc = spawn([*argv, str(watched)], log)
    try:
        wait_established(log, proc)
        yield proc, None
    finally:
        stop(proc)


def watcher_cpu(tool: str, watched: Path, work: Path, op: Callable[[Path], None]) -> float:
    """CPU seconds the tool's process tree spends while op fills the empty `watched`, until it is quiet
    again (its signal came, then no signal and no CPU for 0.5 s)."""
    watched.mkdir(parents=True)
    work.mkdir(parents=True, exist_ok=True)
    try:
        with watching(tool, watched, work) as (proc, rec):
            wait_cpu_quiet(proc.pid, 0.3, 10)
            before = cpu_snapshot(proc.pid)
            t0 = time.monotonic()
            op(watched)
            if rec is not None:
                if rec.wait_after(t0, 30) is None:
                    raise Failed("no signal within 30 s of the copy")
                rec.wait_quiet(0.5, 60)
            wait_cpu_quiet(proc.pid, 0.5, 60)
            cpu = cpu_between(before, cpu_snapshot(proc.pid))
            if proc.poll() is not None:
                raise Failed(f"{tool} exited {proc.returncode}")
            return cpu
    finally:
        shutil.rmtree(watched, ignore_errors=True)


def scenario_events(tmp: Path, sz: Sizes, tools: list[str], skip: dict[str, str]) -> Result:
    missing = [prog for prog in ("tar", "rsync") if not shutil.which(prog)]
    if missing:
        return Result(
            cells=dict.fromkeys(tools, "n/a"),
            met="skipped",
            note=f"skipped: {' and '.join(missing)} not installed (apt-get install {' '.join(missing)})",
        )
    base = tmp / "events"
    tar_files, tar_dirs = source_tree(base / "tar-src", sz.n(2_000))
    tarball = base / "tree.tar"
    subprocess.run(["tar", "-cf", str(tarball), "-C", str(base / "tar-src"), "."], check=True)
    rsync_src = base / "rsync-src"
    rsync_files, rsync_dirs = source_tree(rsync_src, sz.n(4_000))

    def untar(d: Path) -> None:
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(d)], check=True)

    def rsync(d: Path) -> None:
        subprocess.run(["rsync", "-a", f"{rsync_src}/", f"{d}/"], check=True)

    cases = {"tar x": untar, "rsync -a": rsync}
    events: dict[str, int] = {}
    counted: dict[str, str] = {}
    if shutil.which("inotifywait"):
        for name, op in cases.items():
            counts = [count_events(base / "count" / f"{name.split()[0]}{k}", op) for k in range(EVENTS_RUNS)]
            events[name] = max(counts)  # a count can only miss events (see count_events)
            counted[name] = f"{events[name]:,} change events (counts {min(counts):,} to {max(counts):,})"
    sizes = {"tar x": (tar_files, tar_dirs), "rsync -a": (rsync_files, rsync_dirs)}
    res = Result(
        note="; ".join(
            f"`{name}` of {f:,} files in {d:,} dirs (Django's source): "
            + counted.get(name, "events not counted")
            for name, (f, d) in sizes.items()
        )
        + f" (the most of {EVENTS_RUNS} counts by a separate inotifywait -m -r; no open/access/close_nowrite)"
    )
    raw: dict[str, dict[str, float]] = {}

    def measure(tool: str) -> dict[str, float]:
        out = {}
        for name, op in cases.items():
            runs = [
                watcher_cpu(tool, base / tool / f"{name.split()[0]}{k}", base / tool / f"work{k}", op)
                for k in range(EVENTS_RUNS)
            ]
            out[name] = statistics.median(runs)
        return out

    def cell(cpu: dict[str, float]) -> str:
        if len(events) < len(cases):
            return " / ".join(f"{cpu[n] * 1000:.0f}" for n in cases) + " ms CPU"
        per = " / ".join(f"{cpu[n] / events[n] * 1e6:.1f}" for n in cases)
        return f"{per} µs ({' / '.join(f'{cpu[n] * 1000:.0f}' for n in cases)} ms)"

    def one(tool: str) -> str:
        raw[tool] = measure(tool)
        text = cell(raw[tool])
        if tool == "inotifywait":
            raw["inotifywait-alone"] = measure("inotifywait-alone")
            text += f"; alone (no reader, output to /dev/null): {cell(raw['inotifywait-alone'])}"
        return text

    run_tools(tools, one, res, skip)
    if "watchd" in raw and "inotifywait-alone" in raw:
        ratios = [raw["watchd"][n] / max(raw["inotifywait-alone"][n], 1e-9) for n in cases]
        res.met = yes(max(ratios) <= 2) + f" ({' / '.join(f'{r:.2f}x' for r in ratios)} inotifywait alone)"
    elif "watchd" in raw:
        res.met = "? (needs inotifywait)"
    return res


def yes(ok: bool) -> str:
    return "yes" if ok else "NO"


RUNNERS: dict[str, Callable[[Path, Sizes, list[str], dict[str, str]], Result]] = {
    "latency": scenario_latency,
    "idle": scenario_idle,
    "startup": scenario_startup,
    "scale": scenario_scale,
    "storm": scenario_storm,
    "ignored": scenario_ignored,
    "events": scenario_events,
}

MEASURES = {
    "latency": "save -> HUP received, p50 / p95",
    "idle": "CPU s of the process tree / RSS",
    "startup": "launch -> deepest dir's change caught / peak RSS",
    "scale": "launch -> deepest dir's change caught / peak RSS",
    "storm": "HUPs received / last HUP after last write",
    "ignored": "startup / inotify watches",
    "events": "CPU per event, tar x / rsync -a (CPU of the process tree, median of 3)",
}


def table(results: dict[str, Result], tools: list[str]) -> str:
    head = ["scenario", "measure", "goal (spec)", *(TOOL_LABELS[t] for t in tools), "watchd met goal"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        row = [
            f"{name}: {r.note}",
            MEASURES[name],
            GOALS[name],
            *(r.cells.get(t, "n/a") for t in tools),
            r.met,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    uname = " ".join(platform.uname())
    return f"`{uname}`; {cpu}, {os.cpu_count()} CPUs"


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGINT handler of every bench script: stop as Ctrl-C does (every process is stopped)."""
    raise KeyboardInterrupt


def split(text: str, known: tuple[str, ...], what: str, ap: argparse.ArgumentParser) -> list[str]:
    """A comma-separated option (--only, --tools ...) as its items; unknown ones are a usage error."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in known]
    if bad:
        ap.error(f"unknown {what}: {', '.join(bad)} (known: {', '.join(known)})")
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10x smaller trees, 10 saves, 5 s idle")
    ap.add_argument("--only", help=f"comma-separated scenarios of {','.join(SCENARIOS)}")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools (default: all)")
    ap.add_argument("--scale", action="store_true", help="also run 'scale' (1,000,000 files: minutes, ~4 GB)")
    ap.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    ap.add_argument("--tmp", type=Path, default=None, help="where to build the trees (default: $TMPDIR)")
    args = ap.parse_args()

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    scenarios = (
        [s.strip() for s in args.only.split(",")] if args.only else [s for s in SCENARIOS if s != "scale"]
    )
    if args.scale and "scale" not in scenarios:
        scenarios.append("scale")
    bad = [t for t in tools if t not in TOOLS] + [s for s in scenarios if s not in SCENARIOS]
    if bad:
        ap.error(f"unknown: {', '.join(bad)} (tools: {', '.join(TOOLS)}; scenarios: {', '.join(SCENARIOS)})")
    skip = {t: why for t in tools if (why := available(t))}
    for t, why in skip.items():
        print(f"{t}: {why}; its cells say n/a", file=sys.stderr)

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background with SIGINT ignored
    results: dict[str, Result] = {}
    tmp = Path(tempfile.mkdtemp(prefix="watchd-run-", dir=args.tmp))
    sz = Sizes(args.quick)
    try:
        for name in scenarios:
            print(f"{name}:", flush=True)
            results[name] = RUNNERS[name](tmp, sz, tools, skip)
            if results[name].met == "skipped":
                print(f"  {results[name].note}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        stop_all()
        print(f"removing {tmp} ...", file=sys.stderr, flush=True)
        shutil.rmtree(tmp, ignore_errors=True)

    out = table(results, tools)
    print()
    print(out)
    if args.record:
        record("run.py", out)
    return 0


def ratio(value: float, ref: float, digits: int = 0) -> str:
    """A measure and its ratio to the reference row's `ref`: `1234 (1.05x)`."""
    return f"{value:.{digits}f} ({value / ref:.2f}x)"


def print_table(
    script: str,
    rows: dict[str, dict[str, float]],
    head: str,
    cells: Callable[[dict[str, float], dict[str, float]], list[str]],
    *,
    reference: str = "watchd",
    intro: Sequence[str] = (),
    record_it: bool = False,
) -> None:
    """Print the Markdown table of `rows` (a row's name -> its measures), after the lines of
    `intro`: a column `row`, then the columns `head` names (as the header line writes them,
    `ready (ms) | RSS (MiB)`), each row's cells made by `cells(row, the reference row)`. With
    `record_it`, append it to bench/RESULTS.md as `script`'s."""
    ref = rows[reference]
    lines = [*intro, f"| row | {head} |", "|" + "---|" * (head.count("|") + 2)]
    lines += ["| " + " | ".join([name, *cells(r, ref)]) + " |" for name, r in rows.items()]
    out = "\n".join(lines)
    print(out)
    if record_it:
        record(script, out)


def record(script: str, out: str) -> None:
    """Append a table to bench/RESULTS.md with the date, the command line and the machine."""
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    flags = " ".join(sys.argv[1:]) or "(no flags)"
    with open(HERE / "RESULTS.md", "a") as f:
        f.write(f"\n## {when}: bench/{script} {flags}\n\n{machine()}\n\n{out}\n")
    print(f"\nappended to {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    sys.exit(main())
