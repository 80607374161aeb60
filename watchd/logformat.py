"""How log records are written: lines for people (the default), or one JSON object per line
(`--log-format json`, `log_format: json`) for Loki, Elasticsearch, CloudWatch and `jq`.

A JSON line has the time, the level, the watch, the event, the message (the same words the human
format shows) and, where they apply, the paths count, the first path, the result and the duration:

    {"time": "2025-01-02T10:11:12.345Z", "level": "info", "watch": "api", "event": "action",
     "message": "api: src/app.py changed; sent HUP to gunicorn (pid 42) in 3 ms", "paths": 1,
     "first_path": "/srv/api/src/app.py", "result": "ok", "duration": 0.0031}

Events: `start`, `stop`, `change` (with -v, one per change), `action` (`result`: ok, failed,
timeout, stopped), `refused`, `check_failed`, `confirm`, `restart`, `reload`, `trigger`, `pause`,
`resume`; any other line is `log`. Where a record says which in its `extra` (`fields(...)`), that
wins; else the watch is the one whose worker thread logs it, or the name the line starts with, and
the paths come from the batch that worker is acting on. File names are bytes: one that is not UTF-8
is written with \\udcXX escapes (`ensure_ascii`), which `os.fsencode` turns back into the bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar

from watchd.changes import Batch
from watchd.model import LogFormat

# events whose line ends an action: the duration is counted from the start of the worker's act
_ACTION_EVENTS = frozenset({"action", "refused", "check_failed"})

_here = threading.local()  # on a worker's thread: its watch, and the batch it acts on since when
_watches: frozenset[str] = frozenset()  # the running watches' names (set by the daemon)


def fields(event: str, **more: object) -> dict[str, object]:
    """The `extra` of a log call that says its event (and watch, paths, result ...)."""
    return {"watchd": {"event": event, **more}}


def set_watches(names: frozenset[str]) -> None:
    """The names a line may start with, for lines logged away from their watch's thread."""
    global _watches  # noqa: PLW0603 (one set, replaced whole: readers on other threads see old or new)
    _watches = names


def bind_thread(watch: str) -> None:
    """This thread works for `watch` (a worker's thread, from its start)."""
    _here.watch = watch


@contextlib.contextmanager
def acting(batch: Batch, started: float) -> Iterator[None]:
    """While the worker acts on `batch` (since `started`, monotonic): lines from this thread are
    about it."""
    _here.batch, _here.started = batch, started
    try:
        yield
    finally:
        _here.batch = _here.started = None


def structured(record: logging.LogRecord) -> dict[str, object]:
    """What a record says beyond its message: watch, event, paths, first path, result, duration."""
    given: dict[str, object] = dict(getattr(record, "watchd", None) or {})
    out: dict[str, object] = {"event": given.pop("event", "log")}
    watch = given.pop("watch", None) or getattr(_here, "watch", None) or _named(record)
    if watch is not None:
        out["watch"] = watch
    batch: Batch | None = getattr(_here, "batch", None)
    if batch is not None and "paths" not in given:
        paths = batch.paths
        out["paths"] = len(paths)
        if paths:
            out["first_path"] = paths[0]
        if batch.trigger != "change":
            out["trigger"] = batch.trigger
    started = getattr(_here, "started", None)
    if out["event"] in _ACTION_EVENTS and started is not None and "duration" not in given:
        out["duration"] = round(time.monotonic() - started, 6)
    out.update(given)
    return out


def _named(record: logging.LogRecord) -> str | None:
    """The watch a line is about when it starts with its name ("%s: ...", the watch first)."""
    args = record.args
    if isinstance(record.msg, str) and record.msg.startswith("%s: ") and isinstance(args, tuple) and args:
        first = args[0]
        if isinstance(first, str) and first in _watches:
            return first
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname.lower(),
        }
        facts = structured(record)
        doc["watch"] = facts.pop("watch", None)
        doc["event"] = facts.pop("event")
        doc["message"] = record.getMessage()
        doc.update(facts)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=True, separators=(", ", ": "), default=str)


class JournalFormatter(logging.Formatter):
    """Under journald: <N> prefixes set the priority (journald adds its own timestamps)."""

    PRIORITY: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7,
        logging.INFO: 6,
        logging.WARNING: 4,
        logging.ERROR: 3,
        logging.CRITICAL: 2,
    }

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prio = self.PRIORITY.get(record.levelno, 6)
        text = self.inner.format(record) if self.inner is not None else super().format(record)
        return f"<{prio}>{text}"


def formatter(fmt: LogFormat, *, journald: bool) -> logging.Formatter:
    """The formatter of watchd's stderr handler."""
    if fmt is LogFormat.JSON:
        inner: logging.Formatter = JsonFormatter()
        return JournalFormatter(inner) if journald else inner
    if journald:
        return JournalFormatter()
    return logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
