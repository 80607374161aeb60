"""WatchWorker busy policies, with a fake executor the test holds and releases. Bounded waits only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from watchd.changes import Batch, Change, ChangeKind
from watchd.errors import WatchFailed
from watchd.model import OnBusy
from watchd.worker import LOOP_RUNS, WatchWorker

WAIT = 5.0


class FakeExecutor:
    """Records each batch; `execute` blocks until `release` is set (or, if `honour_stop`, `stop`)."""

    not_done = "not done"
    grace = 0.0

    def __init__(self, *, honour_stop: bool = True, fail_first: bool = False) -> None:
        self.on_busy = OnBusy.QUEUE
        self.started = False
        self.honour_stop = honour_stop
        self.fail_first = fail_first
        self.release = threading.Event()
        self.batches: list[Batch] = []
        self.stops: list[threading.Event] = []
        self.stopped_early: list[bool] = []
        self.closed = False
        self._cond = threading.Condition()

    def execute(self, batch: Batch, stop: threading.Event) -> None:
        with self._cond:
            self.batches.append(batch)
            self.stops.append(stop)
            self._cond.notify_all()
            first = len(self.batches) == 1
        while not self.release.wait(0.005):  # wait for either event; bounded by the test's waits
            if self.honour_stop and stop.is_set():
                break
        with self._cond:
            self.stopped_early.append(not self.release.is_set())
            self._cond.notify_all()
        if first and self.fail_first:
            raise RuntimeError("executor bug")

    def start(self) -> None:
        self.started = True

    def status(self) -> str | None:
        return None

    def close(self, deadline: float) -> None:
        self.closed = True

    def wait_started(self, n: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.batches) >= n, WAIT)

    def wait_finished(self, n: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.stopped_early) >= n, WAIT)


def batch(*paths: str, at: float = 0.0) -> Batch:
    return Batch("w", tuple(Change(ChangeKind.MODIFIED, p) for p in paths), at, at)


@pytest.fixture
def runners() -> Iterator[list[WatchWorker]]:
    made: list[WatchWorker] = []
    yield made
    for r in made:
        assert r.close(time.monotonic() + WAIT)
        r._thread.join(WAIT)
        assert not r._thread.is_alive(), "runner thread leaked"


def start(runners: list[WatchWorker], ex: FakeExecutor, on_busy: OnBusy) -> WatchWorker:
    r = WatchWorker("w")
    ex.on_busy = on_busy
    r.attach(ex)
    runners.append(r)
    r.start()
    assert ex.started
    return r


def test_runs_a_batch(runners: list[WatchWorker]) -> None:
    ex = FakeExecutor()
    ex.release.set()
    r = start(runners, ex, OnBusy.QUEUE)
    b1 = batch("a.py")
    r.submit(b1)
    assert r.wait_idle(WAIT)
    assert ex.batches == [b1]
    assert not r.busy


def test_queue_merges_batches_arriving_while_busy_into_one_run(runners: list[WatchWorker]) -> None:
    ex = FakeExecutor()
    r = start(runners, ex, OnBusy.QUEUE)
    b1, b2, b3, b4 = batch("a.py", at=1), batch("b.py", at=2), batch("c.py", at=3), batch("b.py", at=4)
    r.submit(b1)
    assert ex.wait_started(1)
    r.submit(b2)
    r.submit(b3)
    r.submit(b4)
    assert r.busy
    assert not r.wait_idle(0.05)  # held by the executor
    assert len(ex.batches) == 1
    ex.release.set()
    assert r.wait_idle(WAIT)
    assert ex.batches == [b1, b2.merged(b3).merged(b4)]
    assert ex.batches[1].paths == ("b.py", "c.py")
    assert (ex.batches[1].first_at, ex.batches[1].last_at) == (2, 4)
    assert ex.stopped_early == [False, False]


def test_queue_runs_again_after_idle(runners: list[WatchWorker]) -> None:
    ex = FakeExecutor()
    ex.release.set()
    r = start(runners, ex, OnBusy.QUEUE)
    b1, b2 = batch("a.py"), batch("b.py")
    r.submit(b1)
    assert r.wait_idle(WAIT)
    r.submit(b2)
    assert r.wait_idle(WAIT)
    assert ex.batches == [b1, b2]


def test_ignore_drops_batches_arriving_while_busy(
    runners: list[WatchWorker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    ex = FakeExecutor()
    r = start(runners, ex, OnBusy.IGNORE)
    b1, b2, b3 = batch("a.py"), batch("b.py"), batch("c.py")
    r.submit(b1)
    assert ex.wait_started(1)
    r.submit(b2)
    r.submit(b3)
    ex.release.set()
    assert r.wait_idle(WAIT)
    assert ex.batches == [b1]
    assert any("ignoring b.py" in m for m in caplog.messages)
    # once idle, the next batch runs
    b4 = batch("d.py")
    r.submit(b4)
    assert r.wait_idle(WAIT)
    assert ex.batches == [b1, b4]


def test_restart_stops_the_run_and_reruns_with_old_and_new(runners: list[WatchWorker]) -> None:
    ex = FakeExecutor(honour_stop=False)  # a slow executor: ends only when released
    r = start(runners, ex, OnBusy.RESTART)
    b1, b2, b3 = batch("a.py", at=1), batch("b.py", at=2), batch("c.py", at=3)
    r.submit(b1)
    assert ex.wait_started(1)
    stop1 = ex.stops[0]
    assert not stop1.is_set()
    r.submit(b2)
    assert stop1.wait(WAIT)  # the running execute was told to stop
    r.submit(b3)  # arrives while the stopped run is still winding down
    ex.release.set()
    assert r.wait_idle(WAIT)
    assert len(ex.batches) == 2
    rerun = ex.batches[1]
    assert rerun.changes == b1.changes + b2.changes + b3.changes  # one per path: a.py, b.py, c.py
    assert (rerun.first_at, rerun.last_at) == (1, 3)
    assert not ex.stops[1].is_set()  # the new run starts with its stop cleared


def test_restart_ends_a_cooperative_run_promptly(runners: list[WatchWorker]) -> None:
    ex = FakeExecutor(honour_stop=True)
    r = start(runners, ex, OnBusy.RESTART)
    b1, b2 = batch("a.py"), batch("b.py")
    r.submit(b1)
    assert ex.wait_started(1)
    r.submit(b2)
    assert ex.wait_started(2)  # restarted without the test releasing anything
    assert ex.stopped_early == [True]
    assert ex.batches[1].paths == ("a.py", "b.py")
    ex.release.set()
    assert r.wait_idle(WAIT)
    assert len(ex.batches) == 2
    assert ex.stopped_early == [True, False]


@pytest.mark.parametrize("on_busy", [OnBusy.QUEUE, OnBusy.IGNORE])
def test_queue_and_ignore_never_stop_the_running_execute(runners: list[WatchWorker], on_busy: OnBusy) -> None:
    ex = FakeExecutor()
    r = start(runners, ex, on_busy)
    r.submit(batch("a.py"))
    assert ex.wait_started(1)
    r.submit(batch("b.py"))
    assert not ex.stops[0].wait(0.05)
    ex.release.set()
    assert r.wait_idle(WAIT)
    assert ex.stopped_early[0] is False


def test_close_ends_a_blocked_run_and_drops_pending(runners: list[WatchWorker]) -> None:
    ex = FakeExecutor(honour_stop=True)
    r = start(runners, ex, OnBusy.QUEUE)
    r.submit(batch("a.py"))
    assert ex.wait_started(1)
    r.submit(batch("b.py"))  # pending behind the blocked run
    assert r.close(time.monotonic() + WAIT)
    r._thread.join(WAIT)
    assert ex.wait_finished(1)
    assert ex.closed
    assert ex.stopped_early == [True]
    assert not r._thread.is_alive()
    assert not r.busy
    r.submit(batch("c.py"))  # after close: dropped
    assert len(ex.batches) == 1


def test_close_when_idle(runners: list[WatchWorker]) -> None:
    ex = FakeExecutor()
    r = start(runners, ex, OnBusy.QUEUE)
    assert r.close(time.monotonic() + WAIT)
    r._thread.join(WAIT)
    assert not r._thread.is_alive()
    assert ex.closed
    r.submit(batch("a.py"))
    assert ex.batches == []


def test_executor_exception_is_logged_and_the_runner_goes_on(
    runners: list[WatchWorker], caplog: pytest.LogCaptureFixture
) -> None:
    ex = FakeExecutor(fail_first=True)
    ex.release.set()
    r = start(runners, ex, OnBusy.QUEUE)
    b1, b2 = batch("a.py"), batch("b.py")
    r.submit(b1)
    assert r.wait_idle(WAIT)
    assert any("action failed unexpectedly" in rec.getMessage() for rec in caplog.records)
    r.submit(b2)
    assert r.wait_idle(WAIT)
    assert ex.batches == [b1, b2]


class FailingStart(FakeExecutor):
    """Fails in `start` (an action bug, or a call the platform lacks: not a handled error)."""

    def start(self) -> None:
        raise OSError(2, "No usable temporary directory found in ['/tmp']")


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_an_action_that_cannot_start_is_one_line_naming_the_watch_for_the_daemon(
    caplog: pytest.LogCaptureFixture, level: int
) -> None:
    caplog.set_level(level, logger="watchd")
    r = WatchWorker("api")
    ex = FailingStart()
    r.attach(ex)
    with pytest.raises(WatchFailed) as failed:
        r.start()
    assert str(failed.value) == (
        "api: could not start: FileNotFoundError: [Errno 2] No usable temporary directory found in ['/tmp']"
    )
    assert not r._thread.is_alive()  # nothing runs: the daemon decides (exit 2, or marked failed)
    assert r.close(time.monotonic() + WAIT)  # what the daemon does next: closed on its thread
    assert ex.closed
    # nothing logged as an error here (the daemon says it once); the traceback only with -v
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert any(rec.exc_info for rec in caplog.records) == (level == logging.DEBUG)


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_an_unexpected_exception_is_one_error_line_and_the_watch_goes_on(
    runners: list[WatchWorker], caplog: pytest.LogCaptureFixture, level: int
) -> None:
    caplog.set_level(level, logger="watchd")
    ex = FakeExecutor(fail_first=True)
    ex.release.set()
    r = WatchWorker("api")
    r.attach(ex)
    runners.append(r)
    r.start()

    def job() -> None:
        raise ValueError("no such file: new\nline.py")  # its text stays on one line

    r.post(job)
    b1, b2 = batch("a.py"), batch("b.py")
    r.submit(b1)
    assert r.wait_idle(WAIT)
    r.submit(b2)
    assert r.wait_idle(WAIT)
    assert ex.batches == [b1, b2]
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert [rec.getMessage() for rec in errors] == [
        "api: internal error: ValueError: no such file: new\\nline.py",
        "api: the action failed unexpectedly: RuntimeError: executor bug",
    ]
    # the traceback only with -v
    assert all((rec.exc_info is not None) == (level == logging.DEBUG) for rec in errors)


@pytest.mark.parametrize(
    ("command_line", "hint"),
    [(True, "If so, add -i out.txt\n"), (False, 'If so, add ignore: ["out.txt"] to the watch\n')],
)
def test_a_loop_hint_is_written_in_the_syntax_watchd_was_started_with(
    caplog: pytest.LogCaptureFixture, command_line: bool, hint: str
) -> None:
    r = WatchWorker("w", quiet=0.05, command_line=command_line)
    batch = Batch("w", (Change(ChangeKind.MODIFIED, "/src/out.txt"),), 1.0, 1.0)
    for _ in range(LOOP_RUNS + 1):  # each set off 10 ms after the run before ended
        r._last_end = batch.first_at - 0.01
        r._note_loop(batch)
    assert caplog.text.count("does the action write into what it watches?") == 1
    assert caplog.text.endswith(hint)
