"""One worker thread per watch, so a slow command never delays another watch's signal.

The busy policy decides what happens to batches that arrive while an action runs:
queue (merge them, run once more afterwards), ignore (drop them), restart (stop the run and
start again with everything, old and new).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from watchd.actions import Executor
from watchd.changes import Batch
from watchd.config import OnBusy

log = logging.getLogger(__name__)


class Runner:
    def __init__(
        self,
        name: str,
        executor: Executor,
        on_busy: OnBusy = OnBusy.QUEUE,
        *,
        on_done: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.name = name
        self.on_done = on_done
        self.executor = executor
        self.on_busy = on_busy
        self._cond = threading.Condition()
        self._pending: Batch | None = None
        self._current: Batch | None = None
        self._cancel = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"watchd-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._current is not None or self._pending is not None

    def submit(self, batch: Batch) -> None:
        with self._cond:
            if self._closed:
                return
            if self._current is not None:
                if self.on_busy is OnBusy.IGNORE:
                    log.info("%s: still running; ignoring %s", self.name, batch.summary())
                    return
                if self.on_busy is OnBusy.RESTART and not self._cancel.is_set():
                    log.info("%s: %s changed; restarting the running command", self.name, batch.summary())
                    # the interrupted run's changes are carried into the next one
                    self._pending = self._current if self._pending is None else self._pending
                    self._cancel.set()
            self._pending = batch if self._pending is None else self._pending.merged(batch)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch, self._pending = self._pending, None
                assert batch is not None
                self._current = batch
                self._cancel.clear()
            outcome: str | None = None
            try:
                outcome = self.executor.execute(batch, self._cancel)
            except Exception:  # an executor bug must not kill the watch
                log.exception("%s: action failed unexpectedly", self.name)
                outcome = "failed unexpectedly (see the log)"
            finally:
                with self._cond:
                    self._current = None
                    self._cond.notify_all()
            if self.on_done is not None:
                self.on_done(self.name, outcome)

    def request_close(self) -> None:
        """Start stopping without waiting: drop pending batches, tell a running action to end.

        Closing many runners: request all first, then `close` each, so their commands' grace
        periods run in parallel rather than one after the other.
        """
        with self._cond:
            self._closed = True
            self._pending = None
            self._cancel.set()
            self._cond.notify_all()

    def close(self, timeout: float = 1.0) -> None:
        """Stop: drop pending batches, end a running action (it gets `stop`), join the thread."""
        self.request_close()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.executor.close()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing runs or is pending (used by tests and --once style callers)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._current is None and self._pending is None, timeout)
