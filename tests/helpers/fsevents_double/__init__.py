"""A test double of watchdog's `_watchdog_fsevents` C extension (see `_watchdog_fsevents.py`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def installed() -> Iterator[ModuleType]:
    """watchdog's fsevents module, bound to this double as its extension; afterwards both are
    gone again (so no other test, nor watching.native_observer, finds an FSEvents here), and a
    lane's own copies of them, if it had imported them, are back."""
    from helpers.fsevents_double import _watchdog_fsevents as double  # noqa: PLC0415

    names = ("_watchdog_fsevents", "watchdog.observers.fsevents")
    saved = {name: sys.modules.pop(name, None) for name in names}
    sys.modules["_watchdog_fsevents"] = double
    try:
        import watchdog.observers.fsevents as module  # noqa: PLC0415 (needs the double in place)

        yield module
    finally:
        for name in names:
            sys.modules.pop(name, None)
        import watchdog.observers  # noqa: PLC0415

        watchdog.observers.__dict__.pop("fsevents", None)
        for name, was in saved.items():
            if was is not None:
                sys.modules[name] = was
        double.forget_streams()
