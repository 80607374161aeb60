"""The daemon loop's systemd watchdog pings, on an injected clock: the loop's poll() advances the
clock by its timeout instead of waiting, so the pings' times are exact on any machine."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from watchd.daemon import Daemon
from watchd.model import CommandSettings, Config, Watch
from watchd.systemd import Notifier


class _Pings(Notifier):
    """A notifier with WATCHDOG_USEC set that records when each ping went out (no socket)."""

    def __init__(self, watchdog_usec: int, clock: list[float], stop_after: int) -> None:
        super().__init__(None, watchdog_usec)
        self.clock = clock
        self.times: list[float] = []
        self.stop_after = stop_after
        self.daemon: Daemon | None = None

    def watchdog(self) -> None:
        self.times.append(self.clock[0])
        if len(self.times) == self.stop_after and self.daemon is not None:
            self.daemon._stop_code = 0  # the loop returns after this round's poll


class _ClockedPoller:
    """Stands in for the loop's select.poll(): a poll(timeout) with nothing readable moves the
    injected clock on by the timeout, at once; its timeouts are recorded."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.timeouts: list[float] = []

    def poll(self, timeout_ms: int) -> list[tuple[int, int]]:
        self.timeouts.append(timeout_ms / 1000)
        self.clock[0] += timeout_ms / 1000
        return []


@pytest.mark.parametrize(("usec", "every"), [(400_000, 0.2), (30_000_000, 15.0)])
def test_the_loop_pings_the_watchdog_at_half_its_interval(usec: int, every: float) -> None:
    now = [100.0]
    pings = _Pings(usec, now, stop_after=6)
    w = Watch("w", (Path("/nonexistent-watchd-test"),), CommandSettings(command="true", cwd=Path("/")))
    d = Daemon(Config(watches=(w,)), handle_signals=False, clock=lambda: now[0], notifier=pings)
    pings.daemon = d
    poller = _ClockedPoller(now)
    d._poller = poller  # type: ignore[assignment]
    d._root_check_interval = lambda: 3600.0  # type: ignore[method-assign]  # no watcher here
    try:
        assert d._loop() == 0
    finally:
        d._shutdown()
    assert pings.times[0] == 100.0  # the first as the loop starts
    gaps = [b - a for a, b in itertools.pairwise(pings.times)]
    assert gaps == pytest.approx([every] * 5, abs=0.001)  # poll() counts whole milliseconds
    # the loop slept until each ping was due: one poll per ping, no busy waiting in between
    assert len(poller.timeouts) == 6
