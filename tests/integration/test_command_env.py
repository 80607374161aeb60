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


def test_the_watchs_own_variables_reach_the_command_and_the_file_is_read_at_every_run(tmp_path: Path) -> None:
    """env_file's values, then env's over them, then the batch's WATCHD_*; an edit of the file is
    in the next run's environment."""
    from watchd.environment import WatchEnvironment  # noqa: PLC0415

    env_file = tmp_path / "app.env"
    env_file.write_text('TOKEN=first\nexport GREETING="hello world"\nMODE=from-file\nURL=${TOKEN}/x\n')
    environment = WatchEnvironment("w", (("MODE", "from-env"),), env_file)
    command = 'printf "%s|%s|%s|%s|%s\\n" "$TOKEN" "$GREETING" "$MODE" "$URL" "$WATCHD_COUNT" >> out'
    action = CommandAction(
        CommandSettings(command=command, cwd=tmp_path), Context("w", environment=environment)
    )
    action.execute(batch_of(["/a.py"]), threading.Event())
    env_file.write_text("TOKEN=second\n")
    action.execute(batch_of(["/a.py", "/b.py"]), threading.Event())
    assert (tmp_path / "out").read_text().splitlines() == [
        "first|hello world|from-env|first/x|1",
        "second||from-env||2",
    ]


def test_an_env_file_that_turns_unreadable_keeps_its_last_values_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from watchd.environment import WatchEnvironment  # noqa: PLC0415

    env_file = tmp_path / "app.env"
    env_file.write_text("TOKEN=s3cret\n")
    environment = WatchEnvironment("w", (), env_file)
    assert environment.values() == {"TOKEN": "s3cret"}
    env_file.write_text("TOKEN=s3cret\nthis is not a line\n")  # half-way through an edit
    assert environment.values() == {"TOKEN": "s3cret"}
    env_file.unlink()
    assert environment.values() == {"TOKEN": "s3cret"}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"w: env_file {env_file}: line 2: cannot read 'this is not a line' "
        "(write NAME=value, quoting a value with spaces); using its last values"
    ]
    assert "s3cret" not in caplog.text
