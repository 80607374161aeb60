from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.procs import Recorder, Watchd


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts (observers, runners, daemons) must be gone when it ends: the
    code's own stop/close joins them, so what is left gets a moment to finish exiting (1 s for
    all together, so a slow shutdown is a failure here, not hidden)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 1.0
    leaked: list[threading.Thread] = []
    for t in set(threading.enumerate()) - before:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            leaked.append(t)
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(tmp_path)
    yield rec
    rec.stop()


@pytest.fixture
def start_watchd(tmp_path: Path) -> Iterator[type[Watchd]]:
    """Start the installed watchd; every instance is stopped at teardown, even on failure."""
    started: list[Watchd] = []

    class Tracked(Watchd):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("log_path", tmp_path / f"watchd-{len(started)}.log")
            started.append(self)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    yield Tracked
    for w in started:
        w.stop()
