"""Installed as a tool, not from the checkout: a wheel built from a copy of the repository in a
fresh virtualenv answers --version and prints its examples."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "*.egg-info", ".*_cache")


@pytest.mark.skipif(
    getattr(sys.modules.get("sitecustomize"), "ACTIVE", False),
    reason="in the macOS profile pip would take this Linux machine for a Mac and fetch macOS wheels",
)
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_non_editable_install_into_a_fresh_venv_works(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=SKIP)  # a build writes into its source tree
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(src)],
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    python, watchd = str(venv / "bin" / "python"), str(venv / "bin" / "watchd")

    where = subprocess.run(
        [python, "-c", "import watchd; print(watchd.__file__)"], capture_output=True, text=True, cwd=tmp_path
    )
    assert "site-packages" in where.stdout, where  # the installed copy, not the checkout
    for argv in ([watchd, "--version"], [python, "-m", "watchd", "--version"]):
        out = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=True).stdout
        assert out.startswith("watchd "), out
    shown = subprocess.run(
        [watchd, "--example", "gunicorn"], capture_output=True, text=True, cwd=tmp_path, check=True
    ).stdout
    assert shown == (ROOT / "config" / "gunicorn.yaml").read_text()
    (tmp_path / "watchd.yaml").write_text(shown)  # what a user does with it
    valid = subprocess.run(
        [watchd, "--config", "watchd.yaml", "--validate"], capture_output=True, text=True, cwd=tmp_path
    )
    assert valid.returncode == 0, valid.stderr
