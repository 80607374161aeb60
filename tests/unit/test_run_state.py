"""The run action's state machine, driven by hand with a fake child that records what is done to it.

No processes, no sleeping, no threads: the jobs the action posts to its watch's thread (an
exit, a backoff timer) are collected here and run when the test says so, like watchexec's
supervisor tests with their TestChild.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from watchd.actions import Context, run
from watchd.actions.process import Drain, Stopped
from watchd.actions.run import Backoff, RunAction
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import OnExit, RunSettings, Stop
from watchd.outcome import Result
from watchd.values import parse_listen


@dataclass(eq=False)
class FakeChild:
    """Stands in for process.Child: records stop calls; the test decides when it exits."""

    pid: int
    command: str | tuple[str, ...]
    env: dict[str, str]
    on_exit: Callable[[Any], None]
    calls: list[str] = field(default_factory=list)
    code: int | None = None
    uptime: float = 0.0
    ended: float | None = None
    keyboard: tuple[int, float] | None = None
    stopping: bool = False
    fd: int | None = None  # the listening socket it was given (as stdin, for the wrapper to move)
    done: threading.Event = field(default_factory=threading.Event)
    terminal: None = None
    leftover: bool = False  # processes of its group outlive it
    reaped: bool = False

    def stop(self, how: Stop, drain: Drain | None = None) -> Stopped:
        self.calls.append(f"stop {signal.Signals(how.signal).name} {how.timeout:g}")
        if drain is not None:
            self.calls.append(f"drained port {drain.port}")
        self.stopping = True
        self.code = -how.signal
        return Stopped(self.code, 0.01, killed=False)

    def reap(self) -> None:
        self.reaped = True

    def clean_up_group(self, how: Stop) -> Stopped | None:
        if not self.leftover:
            return None
        self.calls.append("clean up group")
        return Stopped(self.code, 0.0, killed=False)

    def exit(self, code: int, uptime: float = 1.0) -> None:
        """The app exits by itself: as the waiter thread would report it."""
        self.code, self.uptime, self.ended = code, uptime, 100.0
        self.done.set()
        self.on_exit(self)


class FakeSock:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False

    def fileno(self) -> int:
        return 100 + self.n

    def close(self) -> None:
        self.closed = True


class FakeListener:
    """Stands in for sockets.Listener: records the hand-over steps instead of steering sockets."""

    steerable = True
    users = 1
    port = 8000
    address = parse_listen("127.0.0.1:8000")

    def __init__(self) -> None:
        self.sock = FakeSock(0)
        self.made = 0
        self.events: list[str] = []

    def fileno(self) -> int:
        return self.sock.fileno()

    def successor(self) -> FakeSock:
        self.made += 1
        self.events.append(f"successor {self.made}")
        return FakeSock(self.made)

    def commit(self, new: FakeSock) -> FakeSock:
        self.events.append(f"commit {new.n}")
        old, self.sock = self.sock, new
        return old

    def hand_over(self) -> FakeSock:
        return self.commit(self.successor())

    def retire(self, old: FakeSock) -> None:
        self.events.append(f"retire {old.n}")
        old.close()

    def probe(self, successor: FakeSock, request: bytes = b"") -> str:
        return "probe"  # FakeReadiness below stands in for what the probe tells

    def drop(self, new: FakeSock) -> None:
        self.events.append(f"drop {new.n}")
        new.close()

    def take_back(self, old: FakeSock) -> None:
        self.events.append(f"take back {old.n}")
        self.sock = old


class FakeReadiness:
    """Stands in for readiness.Readiness: says what the test's script says, one answer a check
    (None: not ready yet), ready at once without a script."""

    script: list[str | None] | None = None

    def __init__(
        self,
        sock: object,
        probe: object,
        notify: object,
        *,
        notify_expected: bool = False,
        http: bool = False,
    ) -> None:
        self.blind = FakeReadiness.script is None
        self.answers = list(FakeReadiness.script or [])
        self.closed = False
        self.probe = probe
        self.notified = False

    def check(self) -> str | None:
        return self.answers.pop(0) if self.answers else None

    def wait(self, timeout: float) -> None:
        pass  # the script's next answer comes at once

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _fake_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    """No probe connection and no NOTIFY_SOCKET: the early app's readiness is scripted."""
    monkeypatch.setattr(run, "Readiness", FakeReadiness)
    monkeypatch.setattr(run, "open_notify_socket", lambda: None)
    monkeypatch.setattr(FakeReadiness, "script", None)


class FakeListeners:
    def __init__(self) -> None:
        self.listener = FakeListener()

    def acquire(self, address: object) -> FakeListener:
        return self.listener

    def release(self, listener: object) -> None:
        pass


class Harness:
    """An RunAction with everything around it recorded."""

    def __init__(
        self,
        on_exit: OnExit = OnExit.WAIT,
        *,
        fail_spawn: bool = False,
        listen: bool = False,
        ready_timeout: float | None = 30.0,
    ) -> None:
        self.children: list[FakeChild] = []
        self.jobs: list[Callable[[], None]] = []
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.finished: list[int] = []
        self.fail_spawn = fail_spawn
        self.listeners = FakeListeners()
        self.pending = False  # a newer batch waits
        self.carried: list[Batch] = []  # batches carried into it
        ctx = Context(
            "web",
            give_way=self.give_way,
            post=self.jobs.append,
            post_later=lambda delay, job: self.timers.append((delay, job)),
            finish=self.finished.append,
            spawn=self.spawn,
            listeners=self.listeners,  # type: ignore[arg-type]
        )
        self.action = RunSettings(
            command="python app.py",
            cwd=Path("/srv/app"),
            on_exit=on_exit,
            listen=parse_listen("127.0.0.1:8000") if listen else None,
            ready_timeout=ready_timeout,
        )
        self.app = RunAction(self.action, ctx)

    def give_way(self, batch: Batch) -> bool:
        if self.pending:
            self.carried.append(batch)
        return self.pending

    def spawn(self, command: str | tuple[str, ...], **kwargs: Any) -> FakeChild:
        if self.fail_spawn:
            raise FileNotFoundError(2, "No such file or directory")
        child = FakeChild(1000 + len(self.children), command, kwargs["env"], kwargs["on_exit"])
        child.fd = kwargs["stdin_fd"]
        self.children.append(child)
        return child

    def run_jobs(self) -> None:
        while self.jobs:
            self.jobs.pop(0)()

    def fire_timers(self) -> list[float]:
        delays = [d for d, _ in self.timers]
        timers, self.timers = self.timers, []
        for _, job in timers:
            job()
        return delays

    def close(self) -> None:
        self.app.close(0.0)


def batch(*paths: str) -> Batch:
    return Batch("web", tuple(Change(ChangeKind.MODIFIED, p) for p in paths), 0.0, 0.0)


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_start_runs_the_app_with_the_launch_environment(h: Harness) -> None:
    h.app.start()
    (child,) = h.children
    assert child.command == "python app.py"
    assert child.env["WATCHD_COUNT"] == "0"
    assert child.env["WATCHD_RESTARTS"] == "0"
    assert child.env["WATCHD_WATCH"] == "web"
    assert h.app.status() == "web: pid 1000"
    h.close()


def test_a_batch_stops_the_app_then_starts_a_new_one(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    h.app.start()
    h.app.execute(batch("/srv/app/app.py"), threading.Event())
    old, new = h.children
    assert old.calls == ["stop SIGTERM 5"]
    assert new.env["WATCHD_PATH"] == "/srv/app/app.py"
    assert new.env["WATCHD_COUNT"] == "1"
    assert new.env["WATCHD_RESTARTS"] == "1"
    assert h.app.child is new
    assert h.app.status() == "web: pid 1001, 1 restart"
    (line,) = [m for m in caplog.messages if "restarted" in m]
    assert line == (
        "web: /srv/app/app.py changed; restarted python app.py: pid 1000 stopped (killed by SIGTERM) "
        "in 0.01 s, new pid 1001"
    )
    h.close()


def test_the_old_apps_exit_seen_after_a_restart_is_stale(h: Harness) -> None:
    h.app.start()
    old = h.children[0]
    h.app.execute(batch("a.py"), threading.Event())
    old.exit(-15)  # the waiter thread reports the exit the restart caused
    h.run_jobs()
    assert len(h.children) == 2
    assert h.timers == []
    assert h.finished == []
    h.close()


def test_stop_event_set_during_a_restart_starts_nothing(h: Harness) -> None:
    h.app.start()
    stop = threading.Event()
    stop.set()  # watchd is shutting down
    h.app.execute(batch("a.py"), stop)
    assert len(h.children) == 1
    assert h.app.child is None


def test_close_stops_the_running_app(h: Harness) -> None:
    h.app.start()
    h.close()
    assert h.children[0].calls == ["stop SIGTERM 5"]
    assert h.app.child is None


# what happens when the app exits by itself: (policy, exit status) -> restart delay or watchd's status
EXITS = [
    # on_exit: wait -- nothing until the next change, except exit status 3
    (OnExit.WAIT, 0, None, None),
    (OnExit.WAIT, 1, None, None),
    (OnExit.WAIT, 3, 0.0, None),
    (OnExit.WAIT, -signal.SIGKILL, None, None),
    # on_exit: restart -- with backoff
    (OnExit.RESTART, 0, 0.5, None),
    (OnExit.RESTART, 1, 0.5, None),
    (OnExit.RESTART, 3, 0.0, None),
    (OnExit.RESTART, -signal.SIGKILL, 0.5, None),
    # on_exit: stop -- watchd ends with the app's status (a signal as 128 + N)
    (OnExit.STOP, 0, None, 0),
    (OnExit.STOP, 1, None, 1),
    (OnExit.STOP, 3, None, 3),
    (OnExit.STOP, -signal.SIGKILL, None, 137),
]


@pytest.mark.parametrize(("policy", "code", "delay", "finish"), EXITS)
def test_on_exit(policy: OnExit, code: int, delay: float | None, finish: int | None) -> None:
    h = Harness(policy)
    h.app.start()
    h.children[0].exit(code, uptime=1.0)
    h.run_jobs()
    assert h.app.child is None
    assert h.finished == ([finish] if finish is not None else [])
    assert [d for d, _ in h.timers] == ([delay] if delay is not None else [])
    if delay is not None:
        h.fire_timers()
        assert len(h.children) == 2
        assert h.app.child is h.children[1]
        assert h.children[1].env["WATCHD_RESTARTS"] == "1"
    h.close()


def test_wait_policy_starts_the_app_again_on_the_next_change(h: Harness) -> None:
    h.app.start()
    h.children[0].exit(1, uptime=0.1)  # e.g. a syntax error at start
    h.run_jobs()
    assert h.app.status() == "web: exited (exit 1)"
    h.app.execute(batch("app.py"), threading.Event())
    assert len(h.children) == 2
    assert h.children[0].calls == []  # it had exited: nothing to stop


def test_a_change_during_backoff_starts_the_app_and_the_timer_is_stale() -> None:
    h = Harness(OnExit.RESTART)
    h.app.start()
    h.children[0].exit(1)
    h.run_jobs()
    assert [d for d, _ in h.timers] == [0.5]
    h.app.execute(batch("app.py"), threading.Event())
    assert len(h.children) == 2
    h.fire_timers()  # the backoff's timer fires later: the app was already started
    assert len(h.children) == 2
    h.close()


def test_restart_backoff_doubles_while_the_app_keeps_failing_fast() -> None:
    h = Harness(OnExit.RESTART)
    h.app.start()
    delays = []
    for _ in range(7):
        h.children[-1].exit(1, uptime=0.2)
        h.run_jobs()
        delays += h.fire_timers()
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    h.children[-1].exit(1, uptime=30.0)  # it ran a while: the sequence starts over
    h.run_jobs()
    assert h.fire_timers() == [0.5]
    h.close()


def test_exit_3_restarts_at_once_but_not_in_a_tight_loop() -> None:
    h = Harness()
    h.app.start()
    delays = []
    for _ in range(4):
        h.children[-1].exit(3, uptime=0.1)
        h.run_jobs()
        delays += h.fire_timers()
    assert delays == [0.0, 0.5, 1.0, 2.0]
    h.close()


def test_an_app_that_cannot_start_counts_as_exit_127(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(OnExit.STOP, fail_spawn=True)
    h.app.start()
    assert h.children == []
    assert h.finished == [127]
    assert "web: could not start python app.py: No such file or directory" in caplog.text


def test_leftovers_of_the_apps_group_are_stopped_after_it_exits(h: Harness) -> None:
    h.app.start()
    child = h.children[0]
    child.leftover = True  # e.g. `sh -c 'worker & exec app'`: the app exited, the worker did not
    child.exit(1)
    h.run_jobs()
    assert child.calls == ["clean up group"]


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGQUIT, 131)])
def test_ctrl_c_that_ends_the_app_ends_watchd(sig: int, status: int) -> None:
    h = Harness()
    h.app.start()
    child = h.children[0]
    child.keyboard = (sig, 99.5)  # the terminal sentinel saw the keyboard's signal...
    child.exit(0)  # ...and the app (Flask, Django) caught it and exited 0, at 100.0
    h.run_jobs()
    assert h.finished == [status]


def test_ctrl_c_long_before_the_exit_is_not_a_quit(h: Harness) -> None:
    h.app.start()
    child = h.children[0]
    child.keyboard = (signal.SIGINT, 10.0)  # pdb took that Ctrl-C; the app crashed much later
    child.exit(1)
    h.run_jobs()
    assert h.finished == []


def test_backoff_alone() -> None:
    b = Backoff(first=0.5, cap=8.0, reset_after=10.0)
    assert [b.next(1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert b.next(10.0) == 0.5  # a long enough run resets it
    b.reset()
    assert b.next(0.0, at_once=True) == 0.0
    assert b.next(0.0, at_once=True) == 0.5


# --------------------------------------------------------------------------- the early start (listen)


def test_with_a_listener_the_next_app_starts_early_and_execute_switches_to_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    h = Harness(listen=True)
    assert h.app.early == 0.01
    h.app.start()
    listener = h.listeners.listener
    old = h.children[0]
    assert old.fd == 100  # the listener's socket
    h.app.prepare(batch("/srv/app/app.py"), threading.Event())
    assert len(h.children) == 2
    early = h.children[1]
    assert early.fd == 101  # a socket of its own, no connection steered to it yet
    assert early.env["WATCHD_RESTARTS"] == "1" and early.env["WATCHD_PATH"] == "/srv/app/app.py"
    assert listener.events == ["successor 1"]
    assert old.calls == []  # the old one still serves
    h.app.execute(batch("/srv/app/app.py"), threading.Event())  # nothing changed since
    assert len(h.children) == 2  # no other start: the early app is the new one
    assert listener.events == ["successor 1", "commit 1", "retire 0"]
    assert old.calls == ["stop SIGTERM 5", "drained port 8000"]
    assert old.reaped
    assert h.app.child is early
    assert h.app.status() == "web: pid 1001, 1 restart"
    assert any(
        "restarted python app.py: pid 1000 stopped" in m
        and "(started early, during the debounce; took over once ready)" in m
        for m in caplog.messages
    )
    h.close()


def test_an_early_app_that_changes_made_stale_is_discarded() -> None:
    h = Harness(listen=True)
    h.app.start()
    h.app.prepare(batch("a.py"), threading.Event())
    early = h.children[1]
    later = Batch("web", (Change(ChangeKind.MODIFIED, "b.py"),), 0.0, 1e12)  # changed after the early start
    h.app.execute(later, threading.Event())
    assert early.calls == ["stop SIGKILL 2"]  # no connection ever went to it: nothing to finish
    assert len(h.children) == 3
    assert h.app.child is h.children[2]
    assert h.children[2].env["WATCHD_PATH"] == "b.py"
    # the discarded one's socket is dropped; the next one takes over once ready
    assert h.listeners.listener.events == ["successor 1", "drop 1", "successor 2", "commit 2", "retire 0"]
    h.close()


def test_an_early_app_that_exits_before_it_is_ready_keeps_the_running_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    FakeReadiness.script = [None]
    h = Harness(listen=True)
    h.app.start()
    old = h.children[0]
    h.app.prepare(batch("app.py"), threading.Event())
    h.children[1].exit(1, uptime=0.2)  # a syntax error in the new code
    h.run_jobs()  # its exit is not the running app's
    assert h.app.child is old
    outcome = h.app.execute(batch("app.py"), threading.Event())
    assert outcome == "kept pid 1000: the new app exited with status 1 before it was ready"
    assert outcome.result is Result.FAILED
    assert old.calls == []
    assert h.app.child is old
    assert h.listeners.listener.events == ["successor 1", "drop 1"]  # never switched
    assert "web: app.py changed; kept pid 1000: the new app exited with status 1 before it was ready" in (
        caplog.messages
    )
    # the next save tries again
    FakeReadiness.script = ["accepted a connection"]
    h.app.execute(batch("app.py"), threading.Event())
    assert h.app.child is h.children[2]
    assert old.calls == ["stop SIGTERM 5", "drained port 8000"]
    h.close()


def test_the_running_app_serves_until_the_next_one_is_ready() -> None:
    FakeReadiness.script = [None, None, "accepted a connection"]
    h = Harness(listen=True)
    h.app.start()
    old = h.children[0]
    h.app.prepare(batch("app.py"), threading.Event())
    h.app.execute(batch("app.py"), threading.Event())
    assert h.listeners.listener.events == ["successor 1", "commit 1", "retire 0"]
    assert h.app.child is h.children[1]
    assert old.calls == ["stop SIGTERM 5", "drained port 8000"]
    h.close()


def test_a_next_app_not_ready_within_ready_timeout_is_stopped_and_the_running_one_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    FakeReadiness.script = []
    h = Harness(listen=True, ready_timeout=0.0)
    h.app.start()
    old = h.children[0]
    outcome = h.app.execute(batch("app.py"), threading.Event())  # no early start: execute starts it
    assert outcome == "kept pid 1000: the new app was not ready within 0 s"
    assert h.children[1].calls == ["stop SIGKILL 2"]
    assert old.calls == [] and h.app.child is old
    assert h.listeners.listener.events == ["successor 1", "drop 1"]
    assert "raise ready_timeout if it needs longer" in caplog.text
    h.close()


def test_newer_changes_while_the_next_app_boots_give_way_to_the_next_batch() -> None:
    FakeReadiness.script = [None]
    h = Harness(listen=True)
    h.app.start()
    old = h.children[0]
    h.pending = True
    first = batch("app.py")
    assert h.app.execute(first, threading.Event()) is None  # nothing done: the next batch does it
    assert h.carried == [first]  # ... with this one's changes carried into it
    assert h.children[1].calls == ["stop SIGKILL 2"]
    assert h.app.child is old and old.calls == []
    h.close()


def test_an_old_app_that_died_meanwhile_does_not_wait_for_the_next_ones_readiness() -> None:
    FakeReadiness.script = [None]
    h = Harness(listen=True)
    h.app.start()
    old = h.children[0]
    old.done.set()  # it crashed; its exit job is not handled yet
    h.app.execute(batch("app.py"), threading.Event())
    assert h.app.child is h.children[1]
    h.close()


def test_a_next_app_answering_the_http_probe_with_500_is_stopped_and_the_running_one_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    FakeReadiness.script = [None, "answered 500 Internal Server Error"]
    h = Harness(listen=True)
    h.app.start()
    old = h.children[0]
    outcome = h.app.execute(batch("app.py"), threading.Event())
    assert outcome == "kept pid 1000: the new app answered 500 Internal Server Error before it was ready"
    assert h.children[1].calls == ["stop SIGKILL 2"]
    assert h.app.child is old and old.calls == []
    assert "(an error at import: see its output above)" in caplog.text
    h.close()


def test_a_next_app_whose_leader_exited_is_discarded_with_its_whole_group() -> None:
    FakeReadiness.script = [None]
    h = Harness(listen=True)
    h.app.start()
    h.app.prepare(batch("app.py"), threading.Event())
    early = h.children[1]
    early.leftover = True  # a process it started still holds its socket
    early.exit(1, uptime=0.1)
    h.app.execute(batch("app.py"), threading.Event())
    assert early.calls == ["clean up group"]
    h.close()


def test_a_next_app_that_dies_as_connections_move_to_it_gives_them_back() -> None:
    FakeReadiness.script = ["accepted a connection"]
    h = Harness(listen=True)
    h.app.start()
    old = h.children[0]
    h.app.prepare(batch("app.py"), threading.Event())
    early = h.children[1]
    listener = h.listeners.listener
    commit = listener.commit

    def commit_and_die(new: FakeSock) -> FakeSock:
        early.exit(1, uptime=0.05)  # it accepted the probe, then died
        return commit(new)

    listener.commit = commit_and_die  # type: ignore[method-assign]
    outcome = h.app.execute(batch("app.py"), threading.Event())
    assert outcome == "kept pid 1000: the new app exited with status 1 before it was ready"
    assert listener.events == ["successor 1", "commit 1", "take back 0", "drop 1"]
    assert h.app.child is old and old.calls == []
    h.close()


def test_ready_timeout_off_starts_the_next_app_only_after_the_running_one_stopped() -> None:
    h = Harness(listen=True, ready_timeout=None)
    assert h.app.early is None
    h.app.start()
    old = h.children[0]
    h.app.prepare(batch("app.py"), threading.Event())
    assert len(h.children) == 1  # nothing beside the running app
    h.app.execute(batch("app.py"), threading.Event())
    assert old.calls == ["stop SIGTERM 5", "drained port 8000"]
    assert h.children[1].fd == 101 and h.app.child is h.children[1]
    h.close()


def test_the_next_app_is_given_a_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    class Notify:
        path = "/run/watchd-test/notify"

        def close(self) -> None:
            pass

    monkeypatch.setattr(run, "open_notify_socket", Notify)
    h = Harness(listen=True)
    h.app.start()
    assert "NOTIFY_SOCKET" not in h.children[0].env  # nobody waits for the first app
    h.app.prepare(batch("app.py"), threading.Event())
    assert h.children[1].env["NOTIFY_SOCKET"] == "/run/watchd-test/notify"
    h.close()


def test_close_discards_an_early_app() -> None:
    h = Harness(listen=True)
    h.app.start()
    h.app.prepare(batch("app.py"), threading.Event())
    h.close()
    assert h.children[0].calls == ["stop SIGTERM 5", "drained port 8000"]
    assert h.children[1].calls == ["stop SIGKILL 2"]


def test_no_early_start_without_a_listener(h: Harness) -> None:
    assert h.app.early is None
    h.app.start()
    h.app.prepare(batch("app.py"), threading.Event())
    assert len(h.children) == 1
    h.close()


def test_an_early_app_whose_old_app_exited_meanwhile_still_gets_the_connections() -> None:
    h = Harness(listen=True)
    h.app.start()
    h.app.prepare(batch("app.py"), threading.Event())
    h.children[0].exit(1)  # the running app crashed during the debounce
    h.run_jobs()
    h.app.execute(batch("app.py"), threading.Event())
    assert h.app.child is h.children[1]
    assert h.listeners.listener.events == ["successor 1", "commit 1", "retire 0"]


def test_an_early_app_switched_to_is_kept_when_watchd_stops_meanwhile() -> None:
    h = Harness(listen=True)
    h.app.start()
    h.app.prepare(batch("app.py"), threading.Event())
    early = h.children[1]
    stop = threading.Event()
    stop.set()
    h.app.execute(batch("app.py"), stop)
    assert h.app.child is early  # its socket is the listener's now: close() stops it properly
    h.close()
    assert early.calls == ["stop SIGTERM 5", "drained port 8000"]


def test_a_dry_run_says_a_reload_watch_would_reload_unless_restart_patterns_match(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = RunSettings(
        command="gunicorn app:app",
        cwd=Path("/srv/app"),
        reload=signal.SIGHUP,
        restart_patterns=("requirements.txt",),
    )
    app = RunAction(settings, Context("web", dry_run=True, roots=(Path("/srv/app"),)))
    caplog.set_level(logging.INFO, logger="watchd")
    app.start()
    assert app.execute(batch("/srv/app/app.py"), threading.Event()) == "would reload (HUP) gunicorn app:app"
    assert (
        caplog.messages[-1] == "web: /srv/app/app.py changed; would reload (HUP) gunicorn app:app [dry run]"
    )
    restart = app.execute(batch("/srv/app/app.py", "/srv/app/requirements.txt"), threading.Event())
    assert restart == "would restart gunicorn app:app"
    plain = RunAction(
        RunSettings(command="gunicorn app:app", cwd=Path("/srv/app")), Context("web", dry_run=True)
    )
    assert plain.execute(batch("/srv/app/app.py"), threading.Event()) == "would restart gunicorn app:app"
    app.close(0.0)
    plain.close(0.0)
