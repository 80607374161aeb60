"""The wake-up protocol between the backend thread and the daemon loop, with the race injected."""

from __future__ import annotations

import select
from pathlib import Path

from watchd.changes import Change, ChangeKind
from watchd.daemon import Daemon
from watchd.model import CommandSettings, Config, Watch


def _daemon() -> Daemon:
    w = Watch("w", (Path("/nonexistent-watchd-test"),), CommandSettings(command="true", cwd=Path("/")))
    return Daemon(Config(watches=(w,)), handle_signals=False)


def _readable(d: Daemon) -> bool:
    return bool(select.select([d._rfd], [], [], 0)[0])


def test_a_change_arriving_while_the_pipe_is_drained_does_not_silence_later_ones() -> None:
    d = _daemon()
    try:
        d._on_change(0, Change(ChangeKind.MODIFIED, "/a"))
        assert _readable(d)
        real_read = d._read_wakeups
        injected = []

        def read_with_race() -> bytes:
            data = real_read()
            if not injected:  # the backend thread runs right after the loop read the pipe
                injected.append(True)
                d._on_change(0, Change(ChangeKind.MODIFIED, "/b"))
            return data

        d._read_wakeups = read_with_race  # type: ignore[method-assign]
        d._drain()
        d._take_changes()
        d._read_wakeups = real_read  # type: ignore[method-assign]
        assert len(next(iter(d._active.values())).batcher) == 2  # /a and /b both taken
        if _readable(d):  # as the loop does: drain only when select says so
            d._drain()
            d._take_changes()
        d._on_change(0, Change(ChangeKind.MODIFIED, "/c"))
        assert _readable(d), "a later change did not wake the loop"
    finally:
        d._shutdown()


def test_a_change_wakes_the_loop_only_if_it_would_not_be_up_in_time() -> None:
    """While a tree lands the loop wakes once per quiet period, not once per read of events: a
    change needs no wake-up if the loop wakes by itself before that change's earliest deadline."""
    now = [100.0]
    w = Watch(
        "w",
        (Path("/nonexistent-watchd-test"),),
        CommandSettings(command="true", cwd=Path("/")),
        debounce=0.05,
    )
    d = Daemon(Config(watches=(w,)), handle_signals=False, clock=lambda: now[0])
    try:
        d._publish_wake(100.2)  # e.g. an open batch due at 100.2: changes from 100.15 on can wait
        now[0] = 100.16
        d._on_change(0, Change(ChangeKind.MODIFIED, "/a"))
        assert not _readable(d)
        assert len(d._incoming) == 1  # queued all the same, for the loop to take when it wakes
        now[0] = 100.14  # its batch could be due at 100.19, before the loop would wake
        d._on_change(0, Change(ChangeKind.MODIFIED, "/b"))
        assert _readable(d)
    finally:
        d._shutdown()


def test_the_shortest_debounce_of_any_watch_and_the_configs_set_the_lead() -> None:
    now = [100.0]
    slow = Watch(
        "slow", (Path("/nonexistent-a"),), CommandSettings(command="true", cwd=Path("/")), debounce=1.0
    )
    fast = Watch(
        "fast", (Path("/nonexistent-b"),), CommandSettings(command="true", cwd=Path("/")), debounce=0.02
    )
    d = Daemon(Config(watches=(slow, fast)), handle_signals=False, clock=lambda: now[0])
    try:
        d._publish_wake(101.0)
        now[0] = 100.985  # 15 ms before the wake: even the fast watch's 20 ms debounce ends after it
        d._on_change(0, Change(ChangeKind.MODIFIED, "/a"))
        assert not _readable(d)
        now[0] = 100.97  # 30 ms before: the fast watch's batch could be due first
        d._on_change(0, Change(ChangeKind.MODIFIED, "/a"))
        assert _readable(d)
    finally:
        d._shutdown()
