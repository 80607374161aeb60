"""Changed paths reach commands through the environment: exact, capped, never E2BIG."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from watchd.actions import Context
from watchd.actions.command import CommandAction
from watchd.actions.process import CHANGED_CAP, changed_environment
from watchd.changes import Batch, Change, ChangeKind
from watchd.model import CommandSettings


def batch_of(paths: list[str]) -> Batch:
    return Batch("w", tuple(Change(ChangeKind.MODIFIED, p) for p in paths), 0.0, 0.0)


def test_100000_changed_paths_do_not_hit_e2big(tmp_path: Path) -> None:
    paths = [f"/srv/app/some/fairly/long/directory/name/module_{i:06d}.py" for i in range(100_000)]
    out = tmp_path / "out"
    action = CommandSettings(
        command=(
            "sh",
            "-c",
            'printf "%s %s %s\\n" "$WATCHD_COUNT" "$WATCHD_TRUNCATED" "${#WATCHD_CHANGED}" > out;'
            ' tr "\\0" "\\n" < "$WATCHD_CHANGED_FILE" | wc -l >> out',
        ),
        cwd=tmp_path,
    )
    CommandAction(action, Context("w")).execute(batch_of(paths), threading.Event())
    count, truncated, length, listed = out.read_text().split()
    assert (count, truncated, listed) == ("100000", "1", "100000")
    assert int(length) <= CHANGED_CAP


def test_changed_variable_holds_whole_lines_only() -> None:
    paths = [f"/p/{'x' * 100}{i}" for i in range(1000)]
    env = changed_environment("w", batch_of(paths), "/tmp/list")
    lines = env["WATCHD_CHANGED"].split("\n")
    assert lines == paths[: len(lines)]
    assert env["WATCHD_TRUNCATED"] == "1"
    assert env["WATCHD_PATH"] == paths[0]


def test_small_batches_are_not_truncated() -> None:
    env = changed_environment("w", batch_of(["/a.py", "/b.py"]), "/tmp/list")
    assert env["WATCHD_CHANGED"] == "/a.py\n/b.py"
    assert env["WATCHD_TRUNCATED"] == "0"
    assert env["WATCHD_COUNT"] == "2"


@pytest.mark.parametrize("cwd_exists", [True, False])
def test_command_that_cannot_start_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cwd_exists: bool
) -> None:
    cwd = tmp_path if cwd_exists else tmp_path / "missing"
    action = CommandSettings(command=("no-such-program-watchd-test",), cwd=cwd)
    CommandAction(action, Context("w")).execute(batch_of(["/a.py"]), threading.Event())
    assert "could not start" in caplog.text


def test_nothing_of_the_list_file_is_left_after_the_run(tmp_path: Path) -> None:
    before = set(os.listdir("/dev/fd"))
    action = CommandSettings(command='echo "$WATCHD_CHANGED_FILE" > where', cwd=tmp_path)
    CommandAction(action, Context("w")).execute(batch_of(["/a.py"]), threading.Event())
    listed = (tmp_path / "where").read_text().strip()
    if listed.startswith("/dev/fd/"):  # an anonymous file (memfd): closed in watchd
        assert set(os.listdir("/dev/fd")) - before == set()
    else:  # a temporary file: removed
        assert Path(listed).name.startswith("watchd-")
        assert not Path(listed).exists()
