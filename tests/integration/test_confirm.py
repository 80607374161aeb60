"""Reload confirmation against real process trees: `children()`, `Confirmation` and the signal
action's confirmations, in-process.

The target is tests/helpers/workers.py: a master with two workers that it replaces on SIGUSR1
(and records, so the test knows which PIDs to expect). Every tree is stopped at teardown by
its process group.

Every test runs on both sides of the platform seam (the `side` fixture): Linux's /proc and
pidfd, and the Darwin side's psutil (children, start times and the master's state without a pidfd).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from helpers.procs import HELPERS, stop_process, wait_for

from watchd.actions import Context
from watchd.actions.confirm import Confirmation, Snapshot, children, snapshot
from watchd.actions.pidfile import PidfileAction
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import PidfileSettings
from watchd.platform.identity import ProcessInfo

pytestmark = pytest.mark.usefixtures("side")


class Tree:
    """A workers.py master; `generations()` are the worker PIDs it has started, oldest first."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.pids_file = directory / "workers.pids"
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "workers.py"), str(self.pids_file), *options],
            start_new_session=True,
        )
        self.pid = self.proc.pid
        if not wait_for(lambda: len(self.generations()) == 1 and len(children(self.pid)) == 2, 10):
            self.stop()
            raise RuntimeError("workers.py did not start its workers")

    def generations(self) -> list[set[int]]:
        try:
            text = self.pids_file.read_text()
        except FileNotFoundError:
            return []
        complete = text.split("\n")[:-1]  # a line is written whole, but may be read half-written
        return [{int(p) for p in line.split()} for line in complete]

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    t = Tree(tmp_path)
    yield t
    t.stop()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="watchd")
    return caplog


def confirmation(tree: Tree, before: Snapshot, timeout: float = 10.0) -> Confirmation:
    return Confirmation(
        "api", process="workers", pid=tree.pid, signame="USR1", before=before, timeout=timeout
    )


def confirm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "watchd-confirm-api"]


# --------------------------------------------------------------------------- children()


def test_children_lists_the_live_children_with_their_start_times(tree: Tree, side: ModuleType) -> None:
    (first,) = tree.generations()
    kids = children(tree.pid)

    assert set(kids) == first
    now = side.uptime()
    assert all(isinstance(t, float) and 0 < t <= now for t in kids.values())  # seconds since boot
    for kid in first:
        assert children(kid) == {}  # the workers have no children of their own


def test_children_follows_a_replacement(tree: Tree) -> None:
    before = children(tree.pid)

    os.kill(tree.pid, signal.SIGUSR1)
    assert wait_for(lambda: len(tree.generations()) == 2, 10)
    _, second = tree.generations()

    assert set(children(tree.pid)) == second
    assert not second & set(before)


def test_children_of_a_process_that_is_gone_is_empty(tree: Tree) -> None:
    tree.stop()

    assert children(tree.pid) == {}


def test_children_leaves_out_zombies() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert wait_for(lambda: proc.pid in children(os.getpid()), 10)
        proc.kill()
        # not reaped yet: a zombie that /proc still lists, but no longer a child that runs
        assert wait_for(lambda: proc.pid not in children(os.getpid()), 10)
        assert Path(f"/proc/{proc.pid}").exists()
    finally:
        proc.kill()
        proc.wait(10)


# --------------------------------------------------------------------------- Confirmation


def test_a_replacement_of_every_worker_is_confirmed(tree: Tree, logs: pytest.LogCaptureFixture) -> None:
    conf = confirmation(tree, snapshot(tree.pid))
    conf.start()
    try:
        os.kill(tree.pid, signal.SIGUSR1)
        assert wait_for(lambda: "reloaded" in logs.text, 10), logs.text
    finally:
        conf.cancel.set()
        conf.join(5)
    assert not confirm_threads()
    (record,) = logs.records
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith(f"api: workers (pid {tree.pid}) reloaded: 2 new workers in ")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # uWSGI's way: the first new worker runs while the second is not forked yet
        (("0.3",), "reloaded: 2 new workers in "),
        # a reload to fewer workers: confirmed once their count has held for a while
        (("0", "1"), "reloaded: 1 new worker in "),
    ],
    ids=["forked-one-by-one", "fewer-after-reload"],
)
def test_the_new_generation_is_counted_whole(
    tmp_path: Path, logs: pytest.LogCaptureFixture, options: tuple[str, ...], expected: str
) -> None:
    t = Tree(tmp_path, *options)
    try:
        conf = confirmation(t, snapshot(t.pid))
        conf.start()
        os.kill(t.pid, signal.SIGUSR1)
        assert wait_for(lambda: "reloaded" in logs.text, 10), logs.text
        conf.join(5)
    finally:
        t.stop()
    assert expected in logs.text, logs.text


def test_workers_not_replaced_in_time_is_a_warning(tree: Tree, logs: pytest.LogCaptureFixture) -> None:
    conf = confirmation(tree, snapshot(tree.pid), timeout=0.3)
    conf.start()
    try:
        assert wait_for(lambda: "not replaced" in logs.text, 10), logs.text
    finally:
        conf.cancel.set()
        conf.join(5)
    (record,) = logs.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        f"api: USR1 sent to {tree.pid} but its workers were not replaced (2 of 2 old still running, 0 new"
    )


def test_a_master_that_dies_is_an_error(tree: Tree, logs: pytest.LogCaptureFixture) -> None:
    conf = confirmation(tree, snapshot(tree.pid))
    conf.start()
    try:
        tree.proc.kill()
        assert wait_for(lambda: "instead of reloading" in logs.text, 10), logs.text
    finally:
        conf.cancel.set()
        conf.join(5)
    (record,) = logs.records
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith(f"api: workers (pid {tree.pid}) exited ")


def test_cancel_ends_the_thread_promptly_and_quietly(tree: Tree, logs: pytest.LogCaptureFixture) -> None:
    conf = confirmation(tree, snapshot(tree.pid), timeout=60.0)
    conf.start()
    assert confirm_threads()

    conf.cancel.set()
    conf.join(2.0)

    assert not confirm_threads()
    assert logs.records == []


def signaller(pidfile: Path, pid: int, sig: int, timeout: float = 10.0) -> PidfileAction:
    """The signal action on a pidfile naming `pid` (written now: after the process started)."""
    pidfile.write_text(f"{pid}\n")
    action = PidfileSettings(pidfile, signal=sig, confirm_timeout=timeout)
    return PidfileAction(action, Context("api"))


def save(action: PidfileAction) -> str | None:
    batch = Batch("api", (Change(ChangeKind.MODIFIED, "/srv/app.py"),), 0.0, 0.0)
    return action.execute(batch, threading.Event())


def outcomes(logs: pytest.LogCaptureFixture) -> list[str]:
    """What each confirmation ended with, in order: reloaded, superseded, or a warning or error."""
    return [
        r.getMessage()
        for r in logs.records
        if r.levelno >= logging.WARNING or "reloaded:" in r.getMessage() or "superseded" in r.getMessage()
    ]


def test_a_signal_while_the_last_reloads_workers_are_young_is_confirmed(
    tree: Tree, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """Two saves in quick succession: the second signal finds only the first reload's new
    workers, started a moment ago. That generation is the one the second reload must replace."""
    logs.set_level(logging.DEBUG, logger="watchd")
    action = signaller(tmp_path / "workers.pid", tree.pid, signal.SIGUSR1)
    try:
        save(action)
        assert wait_for(lambda: len(tree.generations()) == 2, 10)
        save(action)  # the first reload's workers are milliseconds old
        assert wait_for(lambda: len(outcomes(logs)) == 2, 10), logs.text
        assert wait_for(lambda: "reloaded:" in outcomes(logs)[-1], 10), logs.text
    finally:
        action.close(time.monotonic() + 5)
    first, last = outcomes(logs)
    # the first one's workers were still settling: superseded (not a failure), or confirmed
    assert "superseded by the next USR1" in first or "reloaded: 2 new workers" in first, logs.text
    assert last.startswith(f"api: workers.py (pid {tree.pid}) reloaded: 2 new workers in "), logs.text
    assert len(tree.generations()) == 3
    assert set(children(tree.pid)) == tree.generations()[-1]  # the generation it confirmed
    assert "waiting for its 2 workers to be replaced" in logs.text
    assert not confirm_threads()


def test_a_signal_while_the_master_is_still_forking_is_confirmed(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """The second signal comes while the first reload's workers are being forked one by one
    (uWSGI's way): the snapshot holds one young worker, or none. The confirmation under way is
    superseded, and the new one, knowing the server runs 2 workers, reports for both signals."""
    t = Tree(tmp_path, "0.3")
    (gen1,) = t.generations()
    action = signaller(tmp_path / "workers.pid", t.pid, signal.SIGUSR1)
    try:
        save(action)
        # the first new worker is forked, the second not yet (0.3 s later)
        assert wait_for(lambda: set(children(t.pid)) - gen1, 10)
        save(action)
        assert wait_for(lambda: "reloaded:" in logs.text, 10), logs.text
    finally:
        action.close(time.monotonic() + 5)
        t.stop()
    assert "waiting for its 2 workers to be replaced (the previous USR1's reload still under way" in logs.text
    (outcome,) = outcomes(logs)  # the first one ended quietly at INFO
    assert outcome.startswith(f"api: workers.py (pid {t.pid}) reloaded: 2 new workers in "), logs.text
    assert outcome.endswith(" (the last of 2 USR1s)"), logs.text
    assert len(t.generations()) == 3  # the master reloaded twice: the signals did not merge


def test_a_server_that_ignores_two_signals_gets_one_warning_for_both(
    tree: Tree, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """The first confirmation, superseded, reports nothing; the second says it was the last of two."""
    action = signaller(tmp_path / "workers.pid", tree.pid, signal.SIGWINCH, timeout=0.5)  # ignored
    try:
        save(action)
        save(action)
        assert wait_for(lambda: "not replaced" in logs.text, 10), logs.text
    finally:
        action.close(time.monotonic() + 5)
    (warning,) = outcomes(logs)
    assert warning.startswith(
        f"api: WINCH sent to {tree.pid} but its workers were not replaced "
        "(2 of 2 old still running, 0 new after "
    )
    assert warning.endswith(" s; the last of 2 WINCHs)")


def test_children_that_come_and_go_on_their_own_are_no_reload(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """A bash loop's only child is a passing `sleep 0.2`: the child at the signal goes and others
    start, but none stays long enough to be a worker. The timeout says what was seen."""
    target = subprocess.Popen(["bash", "-c", "while :; do sleep 0.2; done"], start_new_session=True)
    try:
        assert wait_for(lambda: children(target.pid), 10)  # a sleep is running
        action = signaller(tmp_path / "loop.pid", target.pid, signal.SIGWINCH, timeout=1.0)  # bash ignores it
        save(action)
        assert "waiting for its 1 worker to be replaced" in logs.text
        assert wait_for(lambda: "not replaced" in logs.text, 10), logs.text
        action.close(time.monotonic() + 5)
    finally:
        stop_process(target)
    (warning,) = outcomes(logs)
    assert warning.startswith(
        f"api: WINCH sent to {target.pid} but its workers were not replaced (0 of 1 old "
    )
    assert "more started and exited: its children come and go" in warning
    assert "reloaded" not in logs.text


def test_a_master_that_cannot_be_read_is_not_reported_as_exited(
    tree: Tree, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, side: ModuleType
) -> None:
    """An unreadable process (hidepid, another user's) means unknown, not dead. EACCES on a live
    process cannot be produced here without remounting /proc: the side's process_info is made to
    raise it, as /proc's open() would."""
    real = side.process_info

    def denied(pid: int) -> ProcessInfo | None:
        if pid == tree.pid:
            raise PermissionError(13, "Permission denied", f"/proc/{pid}/stat")
        result: ProcessInfo | None = real(pid)
        return result

    conf = confirmation(tree, snapshot(tree.pid))
    monkeypatch.setattr(side, "process_info", denied)
    conf.start()
    try:
        assert wait_for(lambda: "cannot confirm" in logs.text, 10), logs.text
    finally:
        conf.cancel.set()
        conf.join(5)
    assert f"cannot confirm the reload: permission denied reading /proc/{tree.pid}/stat" in logs.text
    assert "exited" not in logs.text
