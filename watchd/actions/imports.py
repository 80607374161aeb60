"""What a Python app imported, as its files: the hook in `watchd/hook` reports them over a pipe.

`watch_imports: true` on a run watch. The app gets the hook's directory first on PYTHONPATH and
the pipe's write end as WATCHD_IMPORTS_FD; every app the watch starts (and every worker they
fork) writes to the same pipe, which a thread here reads. New files are handed to `on_files`
(the daemon adds them to the watch: one inotify watch per directory); a file once reported stays
watched. A child that does not load the hook (not Python, `python -S`, `-I`, `-E`) never says
hello: `loaded` stays unset and the run action says so once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchd import platform

log = logging.getLogger(__name__)

HOOK_DIR = str(Path(__file__).resolve().parent.parent / "hook")
HELLO = b"watchd-imports 1"  # the hook's first record (see hook/_watchd_imports.py)
_FIRST_FD = 10  # the pipe's end in the app: clear of 0-2 and of the listening socket's 3


class ImportReports:
    """The pipe an app's import hook writes to, and the thread that reads it."""

    def __init__(self, name: str, on_files: Callable[[list[str]], None]) -> None:
        self.name = name
        self._on_files = on_files
        self.loaded = threading.Event()  # some app said hello
        r, w = platform.current.cloexec_pipe()
        self._r = r
        self._w = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, _FIRST_FD)
        os.close(w)
        self._seen: set[str] = set()
        self._thread = threading.Thread(target=self._read, name=f"watchd-imports-{name}", daemon=True)
        self._thread.start()

    @property
    def fd(self) -> int:
        """The write end, for the app (pass it with pass_fds)."""
        return self._w

    def environment(self, env: dict[str, str]) -> None:
        """Put the hook first on the app's PYTHONPATH and tell it the pipe's descriptor."""
        existing = env.get("PYTHONPATH")
        env["PYTHONPATH"] = HOOK_DIR + (os.pathsep + existing if existing else "")
        env["WATCHD_IMPORTS_FD"] = f"{self._w}:{os.fstat(self._w).st_ino}"

    def close(self) -> None:
        """Stop reading (the apps are gone). The thread ends when it reads the end of the pipe."""
        with contextlib.suppress(OSError):
            os.close(self._w)
        self._thread.join(2)
        with contextlib.suppress(OSError):
            os.close(self._r)

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                data = os.read(self._r, 65536)
            except OSError:
                return
            if not data:
                return
            *records, pending = (pending + data).split(b"\0")
            fresh = []
            for record in records:
                if record == HELLO:
                    self.loaded.set()
                    continue
                path = os.fsdecode(record)
                if path.startswith("/") and path not in self._seen:
                    self._seen.add(path)
                    fresh.append(path)
            if fresh:
                try:
                    self._on_files(fresh)
                except Exception:  # the reports must go on
                    log.exception("%s: handling the app's imported files failed; going on", self.name)
