"""`gitignore: true` from the installed command: a git-ignored file neither runs the command nor
costs a watch, and -v says which line of which ignore file decided."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.procs import WATCHD, Watchd, wait_for


def test_a_git_ignored_file_does_not_run_the_command(tmp_path: Path, start_watchd: type[Watchd]) -> None:
    repo = tmp_path / "repo"
    (repo / "build" / "lib").mkdir(parents=True)
    (repo / "logs").mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("*.log\nbuild/\n")
    (repo / "watchd.yaml").write_text(
        "watches:\n  tests:\n    paths: [.]\n    gitignore: true\n    command: echo ran >> ../runs\n"
    )
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    described = subprocess.run(
        [WATCHD, "--config", str(repo / "watchd.yaml"), "--validate"], capture_output=True, text=True, env=env
    )
    assert "  ignore:    built-in ignores + what git ignores" in described.stdout
    w = start_watchd(["--config", "watchd.yaml", "-v"], env=env, cwd=repo)
    if sys.platform == "linux":  # inotify's pruning: repo and logs; build/ and build/lib cost nothing
        assert "1 root, 2 directories" in w.log()
    (repo / "logs" / "a.log").write_text("x")
    (repo / "build" / "lib" / "x.py").write_text("x")
    assert w.wait_log("tests: logs/a.log not counted (ignored by '*.log' in .gitignore)")
    (repo / "app.py").write_text("x")
    assert wait_for((tmp_path / "runs").exists)
    assert w.wait_log("exit 0")
    assert (tmp_path / "runs").read_text() == "ran\n"
    if sys.platform == "linux":  # build/ has no watch at all: no event, no line
        assert "build/lib/x.py" not in w.log()
    else:  # FSEvents reports the whole tree: the change is seen, and not counted
        assert "tests: build/lib/x.py not counted (ignored by 'build/' in .gitignore)" in w.log()
