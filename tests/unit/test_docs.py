"""Docs that run: every YAML block of the README and every shipped example config validates."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchd.cli import main

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
EXAMPLES = sorted((ROOT / "config").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    logger = logging.getLogger("watchd")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def test_the_readme_has_yaml_blocks() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[f"readme-{i}" for i in range(len(BLOCKS))])
def test_readme_yaml_blocks_validate(block: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "watchd.yaml"
    config.write_text(block)
    status = main(["--config", str(config), "--validate"])
    assert status == 0, capsys.readouterr().err


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_shipped_examples_validate(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(example), "--validate"]) == 0, capsys.readouterr().err
