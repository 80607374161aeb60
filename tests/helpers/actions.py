"""An action that records what the check gate let through (no processes)."""

from __future__ import annotations

import threading

from watchd.changes import Batch
from watchd.model import OnBusy


class Recording:
    """An inner action that records its calls; `early` set: it starts early, like an app with a
    listener, so the gate checks a forming batch too."""

    on_busy = OnBusy.QUEUE
    grace = 0.0

    def __init__(self, not_done: str = "not restarted", early: float | None = 0.01) -> None:
        self.not_done = not_done
        self.early = early
        self.calls: list[str] = []

    def start(self) -> None:
        pass

    def prepare(self, batch: Batch, stop: threading.Event) -> None:
        self.calls.append("prepare")

    def forget(self) -> None:
        self.calls.append("forget")

    def execute(self, batch: Batch, stop: threading.Event) -> str | None:
        self.calls.append("execute")
        return "done"

    def close(self, deadline: float) -> None:
        pass

    def status(self) -> str | None:
        return None
