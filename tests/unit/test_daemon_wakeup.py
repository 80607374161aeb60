"""The wake-up protocol between the backend thread and the daemon loop, with the race injected."""

from __future__ import annotations

import select
from pathlib import Path

from watchd.changes import Change, ChangeKind
from watchd.config import CommandAction, Config, Watch
from watchd.daemon import Daemon


def _daemon() -> Daemon:
    w = Watch("w", (Path("/nonexistent-watchd-test"),), CommandAction(command="true", cwd=Path("/")))
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
