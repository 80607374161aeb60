"""Reload confirmation against real process trees: `children()` and `Confirmation` in-process.

The target is tests/helpers/workers.py: a master with two workers that it replaces on SIGUSR1
(and records, so the test knows which PIDs to expect). Every tree is stopped at teardown by
its process group.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.procs import HELPERS, stop_process, wait_for

from watchd import procfs
from watchd.actions import Context
from watchd.actions.confirm import Children, Confirmation, children, settled
from watchd.actions.pidfile import PidfileSignaller
from watchd.changes import Batch, Change, ChangeKind
from watchd.config import SignalAction


class Tree:
    """A workers.py master; `generations()` are the worker PIDs it has started, oldest first."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.pids_file = directory / "workers.pids"
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "workers.py"), str(self.pids_file), *options],
            start_new_session=True,
        )
        self.pid = self.proc.pid
        # workers count once they have run a while (a reload is judged by those)
        if not wait_for(lambda: len(self.generations()) == 1 and len(settled(children(self.pid))) == 2, 10):
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


def confirmation(tree: Tree, before: Children, timeout: float = 10.0) -> Confirmation:
    return Confirmation(
        "api", process="workers", pid=tree.pid, signame="USR1", before=before, timeout=timeout
    )


def confirm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "watchd-confirm-api"]


# --------------------------------------------------------------------------- children()


def test_children_lists_the_live_children_with_their_start_times(tree: Tree) -> None:
    (first,) = tree.generations()
    kids = children(tree.pid)

    assert set(kids) == first
    assert all(isinstance(t, int) and t > 0 for t in kids.values())
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
    conf = confirmation(tree, children(tree.pid))
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
        conf = confirmation(t, children(t.pid))
        conf.start()
        os.kill(t.pid, signal.SIGUSR1)
        assert wait_for(lambda: "reloaded" in logs.text, 10), logs.text
        conf.join(5)
    finally:
        t.stop()
    assert expected in logs.text, logs.text


def test_workers_not_replaced_in_time_is_a_warning(tree: Tree, logs: pytest.LogCaptureFixture) -> None:
    conf = confirmation(tree, children(tree.pid), timeout=0.3)
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
    conf = confirmation(tree, children(tree.pid))
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
    conf = confirmation(tree, children(tree.pid), timeout=60.0)
    conf.start()
    assert confirm_threads()

    conf.cancel.set()
    conf.join(2.0)

    assert not confirm_threads()
    assert logs.records == []


def test_children_that_come_and_go_on_their_own_are_no_reload(
    tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """A bash loop's only child is a passing `sleep 0.2`: replacing it is not a reload."""
    target = subprocess.Popen(["bash", "-c", "while :; do sleep 0.2; done"], start_new_session=True)
    try:
        pidfile = tmp_path / "loop.pid"
        pidfile.write_text(f"{target.pid}\n")
        assert wait_for(lambda: children(target.pid), 10)  # a sleep is running
        action = SignalAction(pidfile, signal=signal.SIGWINCH)  # bash ignores it
        signaller = PidfileSignaller(action, Context("api"))
        batch = Batch("api", (Change(ChangeKind.MODIFIED, "/srv/app.py"),), 0.0, 0.0)
        signaller.execute(batch, threading.Event())
        assert "cannot confirm a reload: its children all started less than 0.5 s ago" in logs.text
        assert not confirm_threads()  # nothing is followed, so nothing can claim "reloaded"
        assert "reloaded" not in logs.text
        signaller.close(0.0)
    finally:
        stop_process(target)


def test_a_master_that_cannot_be_read_is_not_reported_as_exited(
    tree: Tree, logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/proc unreadable (hidepid, another user's process) means unknown, not dead. EACCES on a
    live process cannot be produced here without remounting /proc: read_stat is made to raise it."""
    real = procfs.read_stat

    def denied(pid: int) -> procfs.ProcStat | None:
        if pid == tree.pid:
            raise PermissionError(13, "Permission denied")
        return real(pid)

    conf = confirmation(tree, settled(children(tree.pid)))
    monkeypatch.setattr(procfs, "read_stat", denied)
    conf.start()
    try:
        assert wait_for(lambda: "cannot confirm" in logs.text, 10), logs.text
    finally:
        conf.cancel.set()
        conf.join(5)
    assert "permission denied reading /proc" in logs.text
    assert "exited" not in logs.text
