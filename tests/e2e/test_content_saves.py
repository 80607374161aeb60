"""content: true against real touch, an editor's save without edits and git restoring files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers.procs import Watchd, wait_for


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_touch_a_save_without_edits_and_git_restoring_the_same_bytes_do_nothing(
    tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = [src / f"m{i}.py" for i in range(20)]
    for i, f in enumerate(files):
        f.write_text(f"x = {i}\n")
    git(src, "init", "-q")
    git(src, "-c", "user.email=t@example.test", "-c", "user.name=t", "add", ".")
    git(src, "-c", "user.email=t@example.test", "-c", "user.name=t", "commit", "-qm", "start")
    out = tmp_path / "out"
    command = f'printf "%s %s\\n" "$WATCHD_COUNT" "$WATCHD_PATH" >> {out}'
    w = start_watchd(["-v", "--content", "--debounce", "300ms", "-p", "*.py", "-c", command, str(src)])
    assert w.wait_log("content: 20 files remembered", timeout=10), w.log()
    for f in files:  # touch
        os.utime(f)
    tmp = src / ".m0.py.swp-new"  # an editor's atomic save of unchanged text
    tmp.write_text("x = 0\n")
    os.replace(tmp, files[0])
    for f in files[:5]:  # git restoring deleted files: the same bytes again
        f.unlink()
    git(src, "checkout", "--", ".")
    assert w.wait_log("but the content is as it was: nothing to do", timeout=10), w.log()
    files[1].write_text("x = 'edited'\n")  # the only real change
    assert wait_for(out.exists, timeout=10), w.log()
    assert w.wait_log("exit 0"), w.log()
    assert out.read_text().splitlines() == [f"1 {files[1]}"]
