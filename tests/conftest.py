from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.procs import Recorder, Watchd
from helpers.terminal import Pty

# Whether this interpreter is the macOS profile's (tests/macos_profile, run by tests/macos_lane.sh):
# sys.platform says "darwin" there, on Linux's kernel.
MACOS_PROFILE: bool = getattr(sys.modules.get("sitecustomize"), "ACTIVE", False)


def _linux_only_reason(item: pytest.Item) -> str | None:
    """Why `item` holds only on Linux, or None. The `linux_only` marker, or a parameter that picks
    Linux's side in the test itself: the Linux side of the platform seam (`side`), or watchd's
    own inotify tree (`native=True`, a fixture's "inotify" parameter)."""
    marker = item.get_closest_marker("linux_only")
    if marker is not None:
        return str(marker.args[0] if marker.args else marker.kwargs.get("reason", "Linux-only"))
    callspec = getattr(item, "callspec", None)
    for name, value in (callspec.params if callspec is not None else {}).items():
        if name == "side" and getattr(value, "NAME", value) == "linux":
            return "the Linux side of the platform seam (/proc, pidfd, cgroups)"
        if (name == "native" and value is True) or value == "inotify":
            return "watchd's own inotify tree (on macOS the Watcher uses watchdog's FSEvents observer)"
    return None


E2E = Path(__file__).resolve().parent / "e2e"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is marked `e2e` (`pytest -m "not e2e"` leaves them out). Off
    Linux -- on a Mac, and in the macOS-profile lane -- Linux-only tests are skipped, each with
    its reason."""
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)
    if sys.platform == "linux":
        return
    for item in items:
        reason = _linux_only_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"Linux-only: {reason}"))


@pytest.fixture(autouse=True, scope="session")
def private_cache_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """watchd keeps each app's preload list in the user's cache directory: the tests' own, so a
    test never starts warm from another run's list (and the user's cache gets none of theirs)."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


UNIT = Path(__file__).resolve().parent / "unit"


@pytest.fixture(autouse=True)
def private_runtime_directory(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Each test's own XDG_RUNTIME_DIR, where a watchd makes its control socket (named after its
    config file, or the one-liner's directory and arguments): two tests running the same config,
    at once on two workers or one after the other, never meet at one socket, and the user's
    runtime directory gets none of theirs. Every process a test starts has it (through this
    process's environment; helpers.procs.child_env adds it to an environment the test wrote out)
    unless the test sets its own. Short, in the temporary directory: a socket's path has about
    100 bytes. Not for tests/unit, which start nothing and touch no files."""
    if request.node.path.is_relative_to(UNIT):
        yield
        return
    directory = tempfile.mkdtemp(prefix="watchd-xdg-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", directory)
    yield
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def restore_watchd_logging() -> Iterator[None]:
    """main() configures the 'watchd' logger (a handler on the captured stderr, no propagation):
    put it back as it was for the next test."""
    logger = logging.getLogger("watchd")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts (observers, runners, daemons) must be gone when it ends: the
    code's own stop/close joins them, so what is left gets a moment to finish exiting (1 s for
    all together, so a slow shutdown is a failure here, not hidden)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 1.0
    leaked: list[threading.Thread] = []
    for t in set(threading.enumerate()) - before:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            leaked.append(t)
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(tmp_path)
    yield rec
    rec.stop()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """An empty directory to watch (test_signal's has its own, with an app in it)."""
    d = tmp_path / "src"
    d.mkdir()
    return d


@pytest.fixture
def ptys() -> Iterator[list[Pty]]:
    """The pseudo-terminals a test runs programs in (it appends each one it makes): closed at
    teardown, the program in each stopped if it still runs, even on failure."""
    made: list[Pty] = []
    yield made
    for p in made:
        p.close()


@pytest.fixture
def start_watchd(tmp_path: Path) -> Iterator[type[Watchd]]:
    """Start the installed watchd; every instance is stopped at teardown, even on failure."""
    started: list[Watchd] = []

    class Tracked(Watchd):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("log_path", tmp_path / f"watchd-{len(started)}.log")
            started.append(self)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    yield Tracked
    for w in started:
        w.stop()
