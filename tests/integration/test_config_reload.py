"""A config reload in-process: a Daemon built from a real config file, with the `reload` that
re-reads it (as the command line builds it), run on a thread; the file is edited as an editor
saves it (a rename onto it), and the daemon's own watch on the file reloads it. Every step waits
for a positive sign (the reload counted, a watch's command having run), never for a quiet spell."""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from helpers.daemons import running
from helpers.procs import wait_for

from watchd.config import load_config
from watchd.daemon import Daemon


def save(config: Path, watches: dict[str, dict[str, object]]) -> None:
    """Write `watches` as the config file, the way an editor saves: a new file renamed onto it."""
    lines = ["watches:"]
    for name, keys in watches.items():
        lines.append(f"  {name}:")
        lines += [f"    {key}: {json.dumps(value)}" for key, value in keys.items()]  # JSON is YAML
    tmp = config.with_name(f".{config.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, config)


def touching(tmp_path: Path, src: str, marker: str) -> dict[str, object]:
    """A watch of `src` whose command makes the file `marker`."""
    return {"paths": [src], "command": ["touch", str(tmp_path / marker)], "debounce": "50ms"}


def running_file(config: Path) -> AbstractContextManager[Daemon]:
    """The daemon of the config file `config`, reloading it as the command line does."""
    return running(load_config(config), reload=lambda: load_config(config))


def reloaded(daemon: Daemon, before: int) -> bool:
    return wait_for(lambda: daemon.reloads > before, timeout=10)


def acts(tmp_path: Path, src: str, marker: str) -> bool:
    """A change in `src` makes the watch's command make `marker` (made anew if it was there)."""
    (tmp_path / marker).unlink(missing_ok=True)
    (tmp_path / src / f"change-{marker}").write_text("")
    return wait_for((tmp_path / marker).exists)


def names(daemon: Daemon) -> set[str]:
    return {w.name for w in daemon.config.watches}


def test_editing_the_config_file_adds_changes_and_removes_watches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config = tmp_path / "watchd.yaml"
    save(config, {"api": touching(tmp_path, "a", "api-1")})
    with running_file(config) as daemon:
        assert names(daemon) == {"api"}
        assert acts(tmp_path, "a", "api-1")

        # a watch added and one changed (its command)
        save(config, {"api": touching(tmp_path, "a", "api-2"), "docs": touching(tmp_path, "b", "docs-1")})
        assert reloaded(daemon, 0)
        assert "config reloaded: 0 unchanged, 1 changed, 1 added, 0 removed" in caplog.text
        assert names(daemon) == {"api", "docs"}
        assert daemon.stats is not None and daemon.stats.roots == 2
        assert acts(tmp_path, "b", "docs-1")  # the new watch acts
        assert acts(tmp_path, "a", "api-2")  # the changed one acts as it says now

        # a watch removed
        save(config, {"docs": touching(tmp_path, "b", "docs-1")})
        assert reloaded(daemon, 1)
        assert "config reloaded: 1 unchanged, 0 changed, 0 added, 1 removed" in caplog.text
        assert names(daemon) == {"docs"}
        assert daemon.stats is not None and daemon.stats.roots == 1  # a/ is no longer watched
        assert acts(tmp_path, "b", "docs-1")


def test_a_bad_edit_keeps_the_running_config_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    (tmp_path / "a").mkdir()
    config = tmp_path / "watchd.yaml"
    save(config, {"api": touching(tmp_path, "a", "api-1")})
    with running_file(config) as daemon:
        running_config = daemon.config
        save(config, {"api": {**touching(tmp_path, "a", "api-2"), "debounce": "soon"}})
        assert reloaded(daemon, 0)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, errors
        assert errors[0].startswith(f"config not reloaded, still running the previous one: {config}:")
        assert "watches.api.debounce" in errors[0]
        assert "\n" not in errors[0]
        assert daemon.config is running_config
        assert daemon.status().startswith("config error, running the previous config: ")
        assert acts(tmp_path, "a", "api-1")  # the previous config's watch, still at work

        # fixed: reloaded, and the error is gone from the status
        save(config, {"api": touching(tmp_path, "a", "api-2")})
        assert reloaded(daemon, 1)
        assert "config reloaded: 0 unchanged, 1 changed, 0 added, 0 removed" in caplog.text
        assert not daemon.status().startswith("config error")
        assert acts(tmp_path, "a", "api-2")
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
