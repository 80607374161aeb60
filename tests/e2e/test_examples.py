"""The example a newcomer starts (config/dev.yaml) shows working actions out of the box."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from helpers.procs import Watchd

ROOT = Path(__file__).resolve().parents[2]


def test_dev_example_runs_its_actions_without_errors(tmp_path: Path, start_watchd: type[Watchd]) -> None:
    # the repository's layout, in a copy: the example points at ../watchd and ../README.md, and
    # honours the repository's .gitignore
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("*.egg-info/\n")
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "dev.yaml", tmp_path / "config" / "dev.yaml")
    (tmp_path / "watchd" / "examples").mkdir(parents=True)
    (tmp_path / "watchd" / "mod.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("# readme\n")
    w = start_watchd(["--config", str(tmp_path / "config" / "dev.yaml")])
    (tmp_path / "watchd" / "mod.py").write_text("x = 2\n")
    assert w.wait_log("code: ", timeout=10) and w.wait_log("exit 0 in", timeout=10), w.log()
    (tmp_path / "README.md").write_text("# readme, edited\n")
    assert w.wait_log("docs: 1 changed, first:", timeout=10), w.log()
    assert w.wait_log("exit 0 in", count=2, timeout=10), w.log()
    assert "ERROR" not in w.log() and "WARNING" not in w.log(), w.log()
