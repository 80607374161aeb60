"""An injected clock for code that measures time with a module's `time.monotonic()` and waits on
a stop event: the waits advance the clock instead of sleeping, and are recorded. (No sleeping,
so no bound on the machine's speed: the test counts the waits.)"""

from __future__ import annotations

import threading
import time


class Clock:
    """Stands in for the `time` module of the code under test (monkeypatch its `time`)."""

    def __init__(self) -> None:
        self.start = 1000.0
        self.now = self.start
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time() + (self.now - self.start)

    def elapsed(self) -> float:
        return self.now - self.start


class ClockedStop(threading.Event):
    """A stop event whose wait(timeout) advances `clock` by the timeout at once (unless set)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "a wait without a timeout would never end on an injected clock"
        if not self.is_set():
            self.clock.waits.append(timeout)
            self.clock.now += timeout
        return self.is_set()
