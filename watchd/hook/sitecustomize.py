"""watchd's import hook: tells watchd which source files the app has imported.

watchd puts this directory first on the app's PYTHONPATH when `watch_imports` is on (and for the
fork server's stable-module list), and `site` imports it at start-up like any `sitecustomize`. It
first imports the `sitecustomize` it hides (the user's or the distribution's), so nothing of
theirs is lost. Then `_watchd_imports.start()` (beside this file) reports the app's imported
files to watchd over the pipe WATCHD_IMPORTS_FD names. Standard library only; must never raise.
"""

import os
import sys


def _load_hidden_sitecustomize() -> None:
    """Import the sitecustomize this one shadows, if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved_path = list(sys.path)
    ours = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        try:
            import sitecustomize  # type: ignore[import-not-found]  # noqa: F401, PLC0415 (the hidden one, further down the path)
        except ImportError as exc:
            if exc.name != "sitecustomize":
                raise
    finally:
        sys.path[:] = saved_path
        if ours is not None:
            sys.modules["sitecustomize"] = ours


try:
    _load_hidden_sitecustomize()
finally:
    try:
        from _watchd_imports import start  # type: ignore[import-not-found]  # (beside this file, on the same path entry)

        start()
    except Exception:  # noqa: S110 (the app must start whatever happens here)
        pass
