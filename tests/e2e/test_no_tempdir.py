"""The installed watchd with no usable temporary directory, as in a pod with readOnlyRootFilesystem
and WORKDIR /tmp: commands, checks and apps still run, and WATCHD_CHANGED_FILE still lists every
changed path exactly, a name with a newline included.

tempfile falls back from a bad TMPDIR to /tmp, /var/tmp and the cwd, and root may write to any
of them here; so a sitecustomize on watchd's PYTHONPATH makes tempfile's directory one that does
not exist -- every tempfile call in watchd then fails as it does in that pod. A probe checks that
the simulation holds before each test relies on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.procs import Watchd, wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="needs anonymous files (memfd)")

NAME = "new\nline.py"
# Reads the list twice, through xargs, and from a process of the command's own that opens it.
READ_IT = (
    'cat "$WATCHD_CHANGED_FILE" > first.bin'
    ' && cat "$WATCHD_CHANGED_FILE" > second.bin'
    " && xargs -0 printf '%s\\0' < \"$WATCHD_CHANGED_FILE\" > xargs.bin"
    " && sh -c 'cat \"$WATCHD_CHANGED_FILE\"' > nested.tmp && mv nested.tmp nested.bin"
)
READS = ("first.bin", "second.bin", "xargs.bin", "nested.bin")


@pytest.fixture
def no_tempdir_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    missing = tmp_path / "no-tmp"
    (site / "sitecustomize.py").write_text(f"import tempfile\ntempfile.tempdir = {str(missing)!r}\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env["TMPDIR"] = str(missing)
    probe = subprocess.run(
        [sys.executable, "-c", "import tempfile; tempfile.mkstemp()"],
        env=env,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert probe.returncode != 0 and b"FileNotFoundError" in probe.stderr, "the simulation does not hold"
    return env


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    return src, out


def listed(*paths: Path) -> bytes:
    return b"".join(os.fsencode(p) + b"\0" for p in paths)


def assert_clean(w: Watchd) -> None:
    log = w.log()
    assert "Traceback" not in log, log
    assert "WATCHD_CHANGED_FILE is unset" not in log, log
    assert w.alive(), log


def test_a_command_runs_and_reads_the_list_exactly(
    dirs: tuple[Path, Path], no_tempdir_env: dict[str, str], start_watchd: type[Watchd]
) -> None:
    src, out = dirs
    w = start_watchd(
        ["--command", READ_IT, "--cwd", str(out), "--debounce", "200ms", str(src)], env=no_tempdir_env
    )
    changed = src / NAME
    changed.write_bytes(b"x")
    assert wait_for((out / "nested.bin").exists, timeout=10), w.log()
    assert w.wait_log("exit 0"), w.log()
    for name in READS:
        assert (out / name).read_bytes() == listed(changed), name
    (out / "nested.bin").unlink()
    changed.write_bytes(b"y")  # and the next change runs it again
    assert wait_for((out / "nested.bin").exists, timeout=10), w.log()
    assert w.wait_log("exit 0", count=2), w.log()
    assert_clean(w)


def test_an_app_starts_and_restarts_with_the_list(
    dirs: tuple[Path, Path], no_tempdir_env: dict[str, str], start_watchd: type[Watchd]
) -> None:
    src, out = dirs
    app = 'cat "$WATCHD_CHANGED_FILE" > list.tmp && mv list.tmp "list-$WATCHD_RESTARTS.bin"; exec sleep 60'
    w = start_watchd(["--run", app, "--cwd", str(out), "--debounce", "200ms", str(src)], env=no_tempdir_env)
    assert wait_for((out / "list-0.bin").exists, timeout=10), w.log()
    assert (out / "list-0.bin").read_bytes() == b""
    changed = src / NAME
    changed.write_bytes(b"x")
    assert wait_for((out / "list-1.bin").exists, timeout=10), w.log()
    assert (out / "list-1.bin").read_bytes() == listed(changed)
    assert w.wait_log("restarted"), w.log()
    assert_clean(w)


def test_a_check_reads_the_list_and_its_failure_is_logged_with_its_output(
    dirs: tuple[Path, Path], no_tempdir_env: dict[str, str], start_watchd: type[Watchd]
) -> None:
    src, out = dirs
    check = (
        'cat "$WATCHD_CHANGED_FILE" > check.tmp && mv check.tmp check.bin;'
        " if [ -e fail ]; then echo boom; exit 1; fi"
    )
    w = start_watchd(
        ["--check", check, "--command", "touch ran", "--cwd", str(out), "--debounce", "200ms", str(src)],
        env=no_tempdir_env,
    )
    changed = src / NAME
    changed.write_bytes(b"x")
    assert wait_for((out / "ran").exists, timeout=10), w.log()
    assert (out / "check.bin").read_bytes() == listed(changed)
    (out / "ran").unlink()
    (out / "fail").touch()
    changed.write_bytes(b"y")
    assert w.wait_log("command not run\n    | boom", timeout=10), w.log()  # the output, kept in a memfd
    assert not (out / "ran").exists()
    assert_clean(w)
