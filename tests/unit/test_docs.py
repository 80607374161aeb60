"""Docs that run: every YAML block of the README and every shipped example config validates."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from watchd.cli import ExitStatus, main
from watchd.systemd import unit_file

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
EXAMPLES = sorted((ROOT / "config").glob("*.yaml"))


pytestmark = pytest.mark.usefixtures("restore_watchd_logging")


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")


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


# --------------------------------------------------------------------------- what a new user reads

SHIPPED = sorted((ROOT / "watchd" / "examples").glob("*.yaml"))
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    """The README's `## title` section, up to the next `## ` heading."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _variables(example: Path) -> set[str]:
    """The environment variables an example's YAML (not its comments) reads."""
    body = "\n".join(line.split("#", 1)[0] for line in example.read_text().splitlines())
    return set(re.findall(r"\$\{(\w+)", body))


def _header(example: Path) -> str:
    """The comment block an example opens with: what `watchd --example NAME` shows first."""
    lines = example.read_text().splitlines()
    return "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lines))


def test_example_descriptions_are_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    """`watchd --example` lists each example's first comment line: a whole sentence, not a fragment."""
    assert main(["--example"]) == 0
    listing = capsys.readouterr().out.split("\n\n", 1)[0].splitlines()
    assert len(listing) == len(SHIPPED)
    for line in listing:
        _name, description = line.split(None, 1)
        assert description[0].isupper() and description.endswith("."), line


@pytest.mark.parametrize("example", SHIPPED, ids=[p.name for p in SHIPPED])
def test_examples_show_the_command_an_installed_watchd_runs(example: Path) -> None:
    """A pipx user has no config/ directory: the examples say `watchd --config watchd.yaml`."""
    text = example.read_text()
    assert not re.search(r"(?<![\w.])config/", text), "mentions the repository's config/"
    if example.stem != "dev":  # dev.yaml is for a clone of watchd itself
        assert f"watchd --example {example.stem} > watchd.yaml" in text
        assert "watchd --config watchd.yaml" in text


@pytest.mark.parametrize("example", SHIPPED, ids=[p.name for p in SHIPPED])
def test_examples_name_the_variables_they_read(example: Path) -> None:
    """Every ${VAR} an example reads is named in its opening comments, where a user sets it up."""
    header = _header(example)
    assert [v for v in sorted(_variables(example)) if v not in header] == []


def test_the_readme_systemd_steps_write_the_config_the_unit_runs() -> None:
    systemd = _section("Run as a systemd user service")
    assert "watchd --example gunicorn > ~/.config/watchd/config.yaml" in systemd
    assert "--config %E/watchd/config.yaml\n" in unit_file(False)  # %E is ~/.config
    assert "systemctl --user edit watchd" in systemd
    # the drop-in sets every variable the example it writes out reads
    gunicorn = _variables(ROOT / "watchd" / "examples" / "gunicorn.yaml")
    assert gunicorn == {"APP_DIR", "GUNICORN_PIDFILE"}
    assert [v for v in sorted(gunicorn) if f"\nEnvironment={v}=" not in systemd] == []
    assert f"RestartPreventExitStatus={int(ExitStatus.USAGE)}" in systemd


def test_the_readme_names_the_variables_of_every_example() -> None:
    """The systemd section lists what each example reads, so its drop-in can set them."""
    systemd = _section("Run as a systemd user service")
    for example in SHIPPED:
        for variable in _variables(example):
            assert f"`{variable}`" in systemd, (example.name, variable)
