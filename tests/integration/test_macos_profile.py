"""The macOS profile's guards (tests/macos_profile), proven inside the lane (tests/macos_lane.sh):
a Linux-only call made by watchd's own modules fails there, loudly -- neither skipped nor turned
into a quiet fallback by an `except Exception` -- and names the file and line that made it.

Each refusal runs in a new interpreter of the lane (the profile comes with PYTHONPATH), writing
its refusals to a file of the test's own, so that the lane's list of refusals stays the suite's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from watchd import inotify, platform
from watchd.actions import imports

IN_PROFILE: bool = getattr(sys.modules.get("sitecustomize"), "ACTIVE", False)
pytestmark = pytest.mark.skipif(not IN_PROFILE, reason="the profile's guards: run by tests/macos_lane.sh")

# watchd/actions/imports.py's ImportReports.__init__ before the platform seam (issue 20: the
# traceback of `watchd -- python app.py` on a Mac), at its line numbers there (31-41).
OLD_IMPORTS_INIT = """\
    def __init__(self, name: str, on_files: Callable[[list[str]], None]) -> None:
        self.name = name
        self._on_files = on_files
        self.loaded = threading.Event()  # some app said hello
        r, w = os.pipe2(os.O_CLOEXEC)
        self._r = r
        self._w = fcntl.fcntl(w, fcntl.F_DUPFD_CLOEXEC, _FIRST_FD)
        os.close(w)
        self._seen: set[str] = set()
        self._thread = threading.Thread(target=self._read, name=f"watchd-imports-{name}", daemon=True)
        self._thread.start()
"""


def run_in_lane(snippet: str, refusals: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MACOS_PROFILE_REFUSALS=str(refusals))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(snippet)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_the_interpreter_plays_a_mac_and_watchd_takes_its_darwin_side() -> None:
    assert sys.platform == "darwin"
    assert os.uname().sysname == "Darwin"
    assert platform.current.NAME == "darwin"
    assert not inotify.available()  # so the Watcher uses watchdog's observer, as on a Mac
    for gone in ("pipe2", "pidfd_open", "waitid", "memfd_create"):
        assert not hasattr(os, gone), gone
    assert not hasattr(__import__("signal"), "pidfd_send_signal")


def test_the_old_imports_pipe2_line_fails_in_the_lane(tmp_path: Path) -> None:
    r = run_in_lane(
        f"""
        import watchd.actions.imports as imports
        source = "class Old:\\n" + {OLD_IMPORTS_INIT!r}
        code = compile("\\n" * 29 + source, imports.__file__, "exec")  # its lines: 31-41
        exec(code, vars(imports))
        imports.ImportReports.__init__ = imports.Old.__init__
        imports.ImportReports("app", print)
        """,
        tmp_path / "refusals",
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert f'File "{imports.__file__}", line 35' in r.stderr  # the line the issue names
    assert "AttributeError: module 'os' has no attribute 'pipe2'" in r.stderr


def test_an_open_of_proc_from_watchd_fails_loudly_and_is_not_swallowed(tmp_path: Path) -> None:
    """/proc/PID/stat, as watchd's Linux side (and the old procfs.py) opens it: refused with an
    exception no `except Exception` catches, naming watchd's file and line."""
    refusals = tmp_path / "refusals"
    r = run_in_lane(
        """
        import os
        from watchd.platform import linux
        try:
            linux.process_info(os.getpid())
        except Exception as exc:
            print("swallowed", type(exc).__name__)
        """,
        refusals,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "swallowed" not in r.stdout
    assert "LinuxOnlyCall: macOS profile: open '/proc/" in r.stderr
    assert "called from watchd/platform/linux.py:" in r.stderr
    assert "open '/proc/" in refusals.read_text()


def test_inotify_from_libc_fails_loudly(tmp_path: Path) -> None:
    r = run_in_lane(
        """
        from watchd import inotify
        inotify._libc()
        """,
        tmp_path / "refusals",
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "LinuxOnlyCall: macOS profile: ctypes.dlsym 'inotify_init1'" in r.stderr
    assert "inotify.py:" in r.stderr


def test_a_listing_of_proc_fails_too(tmp_path: Path) -> None:
    r = run_in_lane("import os; os.listdir('/proc')", tmp_path / "refusals")
    assert r.returncode == 1 and "LinuxOnlyCall: macOS profile: os.listdir '/proc'" in r.stderr, r.stderr


def test_psutil_may_read_proc_it_plays_macos_sysctl_here() -> None:
    """The Darwin side's process facts come from psutil, whose Linux backend reads /proc here."""
    info = platform.current.process_info(os.getpid())
    assert info is not None and info.pid == os.getpid()
    assert platform.current.cmdline(os.getpid())
