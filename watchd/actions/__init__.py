"""Actions: what a watch does with a batch. One module per kind, behind `Executor`."""

from __future__ import annotations

import threading
from typing import Protocol

from watchd.changes import Batch


class Executor(Protocol):
    """Carries out one batch. Runs on the watch's own worker thread, never on watchdog's.

    `stop` is set when the run must end early (restart on busy, shutdown): long-running
    executors poll it and clean up (terminate their process group) promptly.
    Failures are logged, not raised: the daemon goes on and the next change tries again.
    """

    def execute(self, batch: Batch, stop: threading.Event) -> str | None:
        """Carry out `batch`; return a short outcome for status displays ("sent HUP to ...")."""

    def close(self) -> None:
        """Stop background work of its own (e.g. reload confirmation); called once, at shutdown."""
