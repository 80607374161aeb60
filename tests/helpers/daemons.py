"""The daemon in-process, for integration tests: a real Daemon run on a thread (its signal handlers
not installed), with real files and processes around it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from watchd.daemon import Daemon
from watchd.model import Config


@contextmanager
def running(config: Config, *, join: float = 10.0, **kwargs: Any) -> Iterator[Daemon]:
    """A Daemon of `config` (and `kwargs`: reload, clock, dry_run ...) running on a thread, once it
    is ready. At the end it is stopped, and must have ended within `join` seconds with status 0."""
    daemon = Daemon(config, handle_signals=False, **kwargs)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run()), name="daemon-under-test")
    thread.start()
    try:
        assert daemon.ready.wait(10)
        yield daemon
    finally:
        daemon.stop()
        thread.join(join)
        assert not thread.is_alive()
        assert result == [0]
