"""`process: NAME`: the signal action's target found by name among a user's processes, with real
processes these tests start -- copies of the signal recorder under a name no other process has
(a random suffix) -- and stop, by PID, at teardown.

One match is signalled; none, and two, are refused with what was found, and nothing is signalled.
A master whose workers share its name is one match. Every test runs on both sides of the
platform seam (the `side` fixture): Linux's /proc and pidfd, and the Darwin side's psutil."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.procs import HELPERS, profiled, stop_process, wait_for

from watchd.actions import Context
from watchd.actions.pidfile import ProcessAction
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import ProcessSettings
from watchd.outcome import Outcome, Result
from watchd.stats import Tally

pytestmark = pytest.mark.usefixtures("side")

NOBODY = 65534


def unique_name() -> str:
    """A program name no other process has: 13 characters, under Linux's 15 for a process name."""
    return f"wdp-{secrets.token_hex(4)}"[:13]


class Named:
    """A signal recorder running as the program `name`: a copy of tests/helpers/sigrecorder.py
    with that name and a #! line, so the kernel names the process after it (and its command line
    is `python .../name PIDFILE RECORD`)."""

    def __init__(self, directory: Path, name: str, *, prefix: tuple[str, ...] = ()) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="watchd-proc-", dir=directory))
        self.dir.chmod(0o755)
        program = self.dir / name
        program.write_text(f"#!{sys.executable}\n" + (HELPERS / "sigrecorder.py").read_text())
        program.chmod(0o755)
        self.pidfile = self.dir / "pid"
        self.record = self.dir / "signals"
        if prefix:  # another user writes here
            os.chown(self.dir, NOBODY, NOBODY)
        self.proc = subprocess.Popen(
            [*prefix, str(program), str(self.pidfile), str(self.record)],
            start_new_session=True,
            cwd="/",
            env=profiled(dict(os.environ)),
        )
        assert wait_for(lambda: self.pidfile.exists() and self.pidfile.read_text().strip(), 10)
        self.pid = int(self.pidfile.read_text())
        assert self.pid == self.proc.pid

    def signals(self) -> list[str]:
        return [line.split()[0] for line in self.record.read_text().splitlines()]

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def start() -> Iterator[Callable[..., Named]]:
    """Start named recorders; each is stopped, by its own PID (group), at teardown."""
    made: list[Named] = []
    base = Path(tempfile.mkdtemp(prefix="watchd-procs-"))
    base.chmod(0o755)

    def run(name: str, **kwargs: tuple[str, ...]) -> Named:
        made.append(Named(base, name, **kwargs))
        return made[-1]

    yield run
    for n in made:
        n.stop()
    shutil.rmtree(base, ignore_errors=True)


def trigger(
    caplog: pytest.LogCaptureFixture, *, until: Callable[[Tally], bool] | None = None, **settings: object
) -> tuple[Outcome, str, Tally]:
    """One trigger of a `process:` signal action (HUP); its outcome and the log line it made. The
    action is closed at once, or once `until` its tally says so (a reload confirmed)."""
    caplog.clear()
    tally = Tally()
    action = ProcessAction(ProcessSettings(**settings), Context("api", tally=tally))  # type: ignore[arg-type]
    batch = Batch("api", (Change(ChangeKind.MODIFIED, "/srv/app.py"),), 0.0, 0.0)
    result: list[str | None] = []
    t = threading.Thread(target=lambda: result.append(action.execute(batch, threading.Event())))
    t.start()
    t.join(10)
    assert not t.is_alive(), "the signal action blocked"
    (line,) = [r.getMessage() for r in caplog.records if r.name.startswith("watchd")]
    if until is not None:
        assert wait_for(lambda: until(tally), 10), caplog.text
    action.close(0.0)
    (outcome,) = result
    assert isinstance(outcome, str)
    return outcome if isinstance(outcome, Outcome) else Outcome(outcome), line, tally


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="watchd")
    return caplog


def test_the_one_process_of_the_name_is_signalled(
    start: Callable[..., Named], logs: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    target = start(name)
    outcome, line, _ = trigger(logs, process=name, confirm=False)
    assert outcome.result is Result.OK, line
    assert f"sent HUP to {name} (pid {target.pid})" in line
    assert wait_for(lambda: target.signals() == ["SIGHUP"])


def test_it_is_found_again_at_every_trigger(
    start: Callable[..., Named], logs: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    first = start(name)
    assert trigger(logs, process=name, confirm=False)[0].result is Result.OK
    assert wait_for(lambda: first.signals() == ["SIGHUP"])  # recorded before it is stopped
    first.stop()
    second = start(name)  # the app restarted: another PID, no pidfile to say so
    outcome, line, _ = trigger(logs, process=name, confirm=False)
    assert outcome.result is Result.OK, line
    assert f"(pid {second.pid})" in line
    assert wait_for(lambda: second.signals() == ["SIGHUP"])
    assert first.signals() == ["SIGHUP"]


def test_none_is_refused(logs: pytest.LogCaptureFixture) -> None:
    name = unique_name()
    outcome, line, _ = trigger(logs, process=name, confirm=False)
    assert outcome.result is Result.REFUSED
    assert f"HUP not sent: no process named {name!r} among root's processes" in line
    assert "shareProcessNamespace" in line


def test_two_are_refused_with_their_list_and_neither_is_signalled(
    start: Callable[..., Named], logs: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    a, b = start(name), start(name)
    outcome, line, _ = trigger(logs, process=name, confirm=False)
    assert outcome.result is Result.REFUSED
    low, high = sorted((a.pid, b.pid))
    assert f"HUP not sent: 2 processes named {name!r} among root's processes (pid {low}: " in line
    assert f"; pid {high}: " in line
    assert "refused, a signal goes to one" in line
    assert a.signals() == [] and b.signals() == []


def test_the_next_words_of_the_command_line_tell_two_apart(
    start: Callable[..., Named], logs: pytest.LogCaptureFixture
) -> None:
    """`NAME ARG`: the command line from the program on; here the first argument is the pidfile."""
    name = unique_name()
    a, b = start(name), start(name)
    outcome, line, _ = trigger(logs, process=f"{name} {b.pidfile}", confirm=False)
    assert outcome.result is Result.OK, line
    assert f"(pid {b.pid})" in line
    assert wait_for(lambda: b.signals() == ["SIGHUP"])
    assert a.signals() == []


def test_expect_applies_as_to_a_pidfiles_target(
    start: Callable[..., Named], logs: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    target = start(name)
    outcome, line, _ = trigger(logs, process=name, expect="gunicorn", confirm=False)
    assert outcome.result is Result.REFUSED
    assert f"PID {target.pid} ({name}) is not the expected process" in line
    assert target.signals() == []


def test_a_master_and_its_workers_of_the_same_name_are_one_match(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """gunicorn's workers carry its name: the master is the process named so, and the reload is
    confirmed by its workers' replacement as for a pidfile's target."""
    name = unique_name()
    program = tmp_path / name
    program.write_text(f"#!{sys.executable}\n" + PREFORK)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [str(program), str(ready)], start_new_session=True, env=profiled(dict(os.environ))
    )
    try:
        assert wait_for(ready.exists, 10)
        outcome, line, _ = trigger(
            logs, process=name, until=lambda t: t.counts().confirmations["confirmed"] == 1
        )
        assert outcome.result is Result.OK, line
        assert f"sent HUP to {name} (pid {proc.pid})" in line
        assert "waiting for its 2 workers to be replaced" in line
        assert f"{name} (pid {proc.pid}) reloaded: 2 new workers in " in logs.text
    finally:
        stop_process(proc)


# A master that forks two workers (same program, same command line) and replaces them on HUP.
PREFORK = """
import os, signal, sys, time

workers = set()

def spawn():
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            time.sleep(1)
    workers.add(pid)

def reload(*_):
    old = set(workers)
    for _ in range(2):
        spawn()
    for pid in old:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        workers.discard(pid)

def stop(*_):
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    sys.exit(0)

for _ in range(2):
    spawn()
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGHUP, reload)
time.sleep(0.6)  # the workers count as workers once they have run 0.5 s
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
"""


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_as_root_process_user_names_whose_processes_are_searched(
    start: Callable[..., Named], logs: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    target = start(name, prefix=("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"))
    outcome, line, _ = trigger(logs, process=name, confirm=False)
    assert outcome.result is Result.REFUSED, line  # root's own processes only, by default
    assert "no process named" in line
    outcome, line, _ = trigger(logs, process=name, process_user=NOBODY, confirm=False)
    assert outcome.result is Result.OK, line
    assert wait_for(lambda: target.signals() == ["SIGHUP"])
