"""`watchd -- python app.py` with watch_imports, in-process, on the portable side of the platform
seam with os.pipe2 gone (macOS's os has none; it was a traceback there): the app starts, its
import hook reports over the seam's pipe, and an edit of an imported module outside the watched
tree restarts it. (Linux's side is the installed watchd's, in tests/e2e/test_watch_imports.py.)"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.apps import save
from helpers.daemons import running
from helpers.procs import wait_for

from watchd import platform
from watchd.daemon import Daemon
from watchd.model import Config, RunSettings, Stop, Watch
from watchd.platform import darwin


def test_an_edit_of_an_imported_module_restarts_the_app_without_pipe2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "current", darwin)
    monkeypatch.delattr(os, "pipe2", raising=False)
    app, lib, starts = tmp_path / "app", tmp_path / "lib", tmp_path / "starts"
    app.mkdir()
    lib.mkdir()
    save(lib / "sibling.py", "VALUE = 1\n")
    save(
        app / "app.py",
        textwrap.dedent(
            f"""\
            import sys, time
            sys.path.insert(0, {str(lib)!r})
            import sibling
            with open({str(starts)!r}, "a") as f:
                f.write(f"{{sibling.VALUE}}\\n")
            time.sleep(60)
            """
        ),
    )
    action = RunSettings(
        command=(sys.executable, "app.py"), cwd=app, stop=Stop(timeout=5.0), watch_imports=True
    )
    with running(Config((Watch("app", (app,), action, debounce=0.05),)), join=15) as daemon:
        assert wait_for(lambda: starts.exists() and starts.read_text() == "1\n", timeout=10)
        # the hook's report of lib/sibling.py arrives over the pipe: then an edit there restarts
        assert wait_for(lambda: str(lib / "sibling.py") in _watched(daemon), timeout=10)
        save(lib / "sibling.py", "VALUE = 2\n")
        assert wait_for(lambda: starts.read_text() == "1\n2\n", timeout=10), starts.read_text()


def _watched(daemon: Daemon) -> set[str]:
    return {p for a in list(daemon._active.values()) for p in a.imported}
