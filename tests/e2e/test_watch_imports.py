"""watch_imports: the installed watchd runs real Python apps whose import hook reports what they
imported; editing an imported file outside the watched paths restarts the app."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.apps import save
from helpers.procs import Watchd, wait_for
from helpers.servers import free_port

from watchd.actions.imports import HOOK_DIR

PY = sys.executable
BIN = Path(PY).parent
WSGI = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the app's directory, a library directory outside it, the file each start appends to)."""
    app, lib = tmp_path / "app", tmp_path / "lib"
    app.mkdir()
    (lib / "sibling").mkdir(parents=True)
    save(lib / "sibling" / "__init__.py", "VALUE = 1\n")
    return app, lib, tmp_path / "starts"


def app_source(lib: Path, starts: Path, body: str = "") -> str:
    """An app that imports `sibling` from `lib`, appends its VALUE to `starts`, then runs `body`."""
    return (
        textwrap.dedent(
            f"""\
        import sys, time
        sys.path.insert(0, {str(lib)!r})
        import sibling
        with open({str(starts)!r}, "a") as f:
            f.write(f"{{sibling.VALUE}}\\n")
        """
        )
        + textwrap.dedent(body)
        + "time.sleep(60)\n"
    )


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def env_without_notify() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}


def test_editing_an_imported_package_outside_the_paths_restarts_the_app(
    dirs: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    app, lib, starts = dirs
    save(app / "app.py", app_source(lib, starts))
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app, env=env_without_notify())  # no PATH: on by default
    assert wait_for(lambda: lines(starts) == ["1"]), w.log()
    assert w.wait_log("files the app imported"), w.log()
    assert w.wait_log(f"{lib / 'sibling'}/ (1)"), w.log()  # reported within the hook's 0.25 s look
    save(lib / "sibling" / "__init__.py", "VALUE = 2\n")
    assert wait_for(lambda: lines(starts) == ["1", "2"], timeout=10), w.log()
    assert w.wait_log("sibling/__init__.py changed; restarted"), w.log()  # logged once the start is done


def test_a_module_imported_late_is_picked_up(
    dirs: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    app, lib, starts = dirs
    save(lib / "late.py", "LATE = 'a'\n")
    trigger = app.parent / "trigger"
    # the app imports `late` only once asked (as a view would, inside a request), then records it
    body = f"""\
        import os
        while not os.path.exists({str(trigger)!r}):
            time.sleep(0.02)
        import late
        with open({str(starts)!r}, "a") as f:
            f.write(f"late-{{late.LATE}}\\n")
        """
    save(app / "app.py", app_source(lib, starts, body))
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app, env=env_without_notify())
    assert wait_for(lambda: lines(starts) == ["1"]), w.log()
    trigger.write_text("")
    assert wait_for(lambda: lines(starts) == ["1", "late-a"]), w.log()
    assert w.wait_log(f"{lib}/ (1)"), w.log()
    save(lib / "late.py", "LATE = 'b'\n")
    assert wait_for(lambda: lines(starts)[-1:] == ["late-b"], timeout=10), w.log()


def test_a_syntax_error_in_an_imported_file_then_the_fix_restarts(
    dirs: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    app, lib, starts = dirs
    save(lib / "sibling" / "__init__.py", "VALUE = (\n")  # broken before the first start
    save(app / "app.py", app_source(lib, starts))
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app, env=env_without_notify())
    assert w.wait_log("SyntaxError"), w.log()
    assert w.wait_log("waiting for a change"), w.log()
    # the traceback's files are watched once the report is read: a save before that is not seen
    # (on inotify within milliseconds of the exit; FSEvents starts a stream per directory, on a
    # thread of its own, after the log line): saved again, as a user would, until it restarts.
    # -v names the directory once it is watched (the INFO line comes with the first report only,
    # which may be the hook's own first look, app.py alone, before the traceback's report)
    assert w.wait_log(f"{lib / 'sibling'}/ (1)"), w.log()

    def fixed() -> bool:
        save(lib / "sibling" / "__init__.py", "VALUE = 3\n")  # the file named in the traceback
        return wait_for(lambda: lines(starts)[:1] == ["3"], timeout=0.5)  # (a later save restarts again)

    assert wait_for(fixed, timeout=10), w.log()


def test_an_existing_sitecustomize_still_runs(
    dirs: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    app, lib, starts = dirs
    site = app.parent / "site"
    site.mkdir()
    marker = app.parent / "sitecustomize-ran"
    save(site / "sitecustomize.py", f"open({str(marker)!r}, 'w').close()\n")
    save(app / "app.py", app_source(lib, starts))
    env = dict(env_without_notify(), PYTHONPATH=str(site))
    w = start_watchd(["-v", "--", PY, "app.py"], cwd=app, env=env)
    assert wait_for(lambda: lines(starts) == ["1"]), w.log()
    assert wait_for(marker.exists), w.log()  # the user's sitecustomize ran ...
    assert w.wait_log(f"{lib / 'sibling'}/ (1)"), w.log()
    save(lib / "sibling" / "__init__.py", "VALUE = 2\n")
    assert wait_for(lambda: lines(starts) == ["1", "2"], timeout=10), w.log()  # ... and so did the hook


@pytest.mark.slow
def test_python_isolated_mode_falls_back_to_the_globs_with_one_line(
    dirs: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    app, lib, starts = dirs
    save(app / "app.py", app_source(lib, starts))
    w = start_watchd(
        ["--watch-imports", "-p", "*.py", "--", PY, "-I", "app.py"], cwd=app, env=env_without_notify()
    )
    assert wait_for(lambda: lines(starts) == ["1"]), w.log()
    assert w.wait_log("did not load watchd's import hook", timeout=10), w.log()
    save(lib / "sibling" / "__init__.py", "VALUE = 2\n")  # not watched: the hook never reported it
    save(app / "app.py", app_source(lib, starts) + "\n")  # the glob still restarts it
    assert wait_for(lambda: lines(starts) == ["1", "2"], timeout=10), w.log()
    assert w.log().count("did not load watchd's import hook") == 1


def test_patterns_or_paths_turn_the_default_off(
    dirs: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    app, lib, starts = dirs
    save(app / "app.py", app_source(lib, starts))
    w = start_watchd(["-p", "*.py", "--", PY, "app.py"], cwd=app, env=env_without_notify())
    assert wait_for(lambda: lines(starts) == ["1"]), w.log()
    save(lib / "sibling" / "__init__.py", "VALUE = 2\n")
    save(app / "marker.py", "")  # a sentinel change the glob counts: one restart, for it
    assert wait_for(lambda: len(lines(starts)) == 2, timeout=10), w.log()
    assert "files the app imported" not in w.log()
    assert "sibling" not in w.log()


def test_a_forked_worker_reports_what_it_imports(
    dirs: tuple[Path, Path, Path], start_watchd: type[Watchd]
) -> None:
    """gunicorn without --preload imports the app in its worker, after the fork: the worker reports."""
    app, lib, starts = dirs
    save(app / "wsgi.py", app_source(lib, starts).replace("time.sleep(60)\n", "") + WSGI)
    port = free_port()
    env = dict(env_without_notify(), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    argv = ["gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    w = start_watchd(["-v", "--", *argv], cwd=app, env=env)
    assert wait_for(lambda: lines(starts) == ["1"], timeout=20), w.log()
    assert w.wait_log(f"{lib / 'sibling'}/ (1)"), w.log()
    save(lib / "sibling" / "__init__.py", "VALUE = 2\n")
    assert wait_for(lambda: lines(starts) == ["1", "2"], timeout=20), w.log()


def test_the_hook_writes_nothing_to_a_descriptor_that_is_not_watchds_pipe(tmp_path: Path) -> None:
    """A process in between that closed the pipe: the number names another file now; it stays untouched."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    fd = os.open(victim, os.O_WRONLY)
    try:
        env = dict(os.environ, PYTHONPATH=HOOK_DIR, WATCHD_IMPORTS_FD=f"{fd}:{os.fstat(fd).st_ino + 1}")
        done = subprocess.run([PY, "-c", "import json"], env=env, pass_fds=(fd,), timeout=30, check=False)
    finally:
        os.close(fd)
    assert done.returncode == 0
    assert victim.read_bytes() == b""
