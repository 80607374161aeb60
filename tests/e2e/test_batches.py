"""One user operation is one action, naming what really changed (the installed watchd, real files)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from helpers.changes import write_sentinel
from helpers.procs import Watchd, wait_for

REPORT = 'printf "%s|%s|%s\\n" "$WATCHD_COUNT" "$WATCHD_PATH" "$watch_event_type" >> {out}'


def reports(out: Path) -> list[list[str]]:
    return [line.split("|") for line in out.read_text().splitlines()] if out.exists() else []


def test_non_matching_writes_keep_one_operation_one_action(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    """rsync writes locale/*.po and static/* for 100+ ms between two .py files: one action, after the end.
    (A 500 ms debounce, 100 writes of other files ~10 ms apart between .py files: the .py files
    alone, at least 1 s apart however fast the machine, would not keep the batch open; the other
    writes do, even when this process is not scheduled for 400 ms, as under load; max_delay is
    out of the way.)"""
    out = tmp_path / "out"
    command = REPORT.format(out=out) + "; date +%s.%N >> " + str(out) + ".t"
    # made before watchd starts: a directory made after is watched a moment later, and the writes
    # into it before that are not seen (under load, long enough to close the batch after m0.py)
    (src / "static").mkdir()
    w = start_watchd(["-p", "*.py", "--debounce", "500ms", "--max-delay", "30s", "-c", command, str(src)])
    i = 0
    last_write = 0.0
    for _ in range(3):  # counts, not times: as many writes, and as far apart, on a slow machine
        (src / f"m{i}.py").write_text("x = 1\n")
        for _ in range(100):  # >= 1 s of other files, a write every 10 ms
            (src / "static" / f"s{i}.css").write_text("x")
            time.sleep(0.01)
            i += 1
        last_write = time.time()
    assert wait_for(lambda: len(reports(out)) >= 1, timeout=10), w.log()
    # one action: a change after the operation is the second, alone in its batch
    write_sentinel(src / "sentinel.py")
    assert wait_for(lambda: any(r[1] == str(src / "sentinel.py") for r in reports(out)), timeout=10), w.log()
    assert [r[:2] for r in reports(out)[1:]] == [["1", str(src / "sentinel.py")]], reports(out)
    ran_at = float((tmp_path / "out.t").read_text().split()[0])
    assert ran_at > last_write  # after the last write, not in the middle of the operation


def test_a_file_that_keeps_changing_does_not_hold_a_save_back(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    """A Flask app logging to app.log under traffic: the log keeps every batch open until
    max_delay (60 s here), unless watchd sees it is churn. Said once, with the -i to add."""
    out = tmp_path / "out"
    w = start_watchd(["-v", "-p", "*.py", "--max-delay", "60s", "-c", REPORT.format(out=out), "."], cwd=src)
    stop = threading.Event()

    def log_requests() -> None:
        with open(src / "app.log", "a") as f:
            while not stop.is_set():
                f.write("127.0.0.1 - GET / 200\n")
                f.flush()
                time.sleep(0.01)

    logger = threading.Thread(target=log_requests)
    logger.start()
    try:
        assert w.wait_log("app.log keeps changing", timeout=10), w.log()
        assert "add -i app.log" in w.log()
        (src / "app.py").write_text("x = 1\n")
        assert wait_for(lambda: len(reports(out)) == 1, timeout=10), w.log()
        assert reports(out) == [["1", str(src / "app.py"), "created"]]
        assert w.wait_log("app.py changed; ran"), w.log()
        said = w.log().count("app.log not counted")
        (src / "app.py").write_text("x = 2\n")
        assert wait_for(lambda: len(reports(out)) == 2, timeout=10), w.log()
    finally:
        stop.set()
        logger.join()
    assert w.log().count("app.log not counted") == said  # -v: no line per write once it is churn
    assert w.log().count("keeps changing") == 1


def test_a_temporary_file_renamed_onto_the_target_reports_the_target_once(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    out = tmp_path / "out"
    app = src / "app.py"
    app.write_text("x = 1\n")
    w = start_watchd(["-p", "*.py", "-c", REPORT.format(out=out), str(src)])
    fd, tmp = tempfile.mkstemp(dir=src, suffix=".py")  # Python's tempfile + os.replace, a .py temp name
    with os.fdopen(fd, "w") as f:
        f.write("x = 2\n")
    os.replace(tmp, app)
    assert wait_for(lambda: len(reports(out)) == 1, timeout=5), w.log()
    # FSEvents names both sides of a rename by inode, and a coalesced batch can leave the target
    # looking made anew: off Linux the one change may say "created" (watchdog cannot tell)
    kinds = {"modified"} if sys.platform == "linux" else {"modified", "created"}
    ((count, path, kind),) = reports(out)
    assert (count, path) == ("1", str(app))
    assert kind in kinds, reports(out)
    assert w.wait_log("app.py changed; ran"), w.log()  # logged when the command has ended
    assert os.path.basename(tmp) not in w.log()


@pytest.mark.parametrize("how", ["sed", "replace"])
def test_polling_sees_an_atomic_save_as_a_modification(
    tmp_path: Path, src: Path, start_watchd: type[Watchd], how: str
) -> None:
    out = tmp_path / "out"
    app = src / "app.py"
    app.write_text("x = 1\n")
    w = start_watchd(
        ["-p", "*.py", "--poll", "--poll-interval", "100ms", "-c", REPORT.format(out=out), str(src)]
    )
    if how == "sed":
        subprocess.run(["sed", "-i", "s/1/2/", str(app)], check=True)
    else:
        (src / ".app.py.swp-new").write_text("x = 3\n")
        os.replace(src / ".app.py.swp-new", app)
    assert wait_for(lambda: len(reports(out)) == 1, timeout=5), w.log()
    assert reports(out) == [["1", str(app), "modified"]]


def test_a_deleted_file_is_logged_as_deleted(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    out = tmp_path / "out"
    (src / "old.py").write_text("")
    w = start_watchd(["-p", "*.py", "-c", REPORT.format(out=out), str(src)])
    (src / "old.py").unlink()
    assert w.wait_log("old.py deleted; ran"), w.log()
    assert reports(out) == [["1", str(src / "old.py"), "deleted"]]


def test_a_command_that_changes_its_own_inputs_is_warned_about_once(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    w = start_watchd(["-c", f"date >> {src / 'out.txt'}", str(src)])
    (src / "start.txt").write_text("")
    assert w.wait_log("does the action write into what it watches?", timeout=20), w.log()
    assert "add -i out.txt" in w.log()  # in the syntax watchd was started with (a config: ignore:)
    runs = w.log().count("ran date")
    assert wait_for(lambda: w.log().count("ran date") > runs + 5, timeout=10)  # it goes on looping ...
    assert w.log().count("does the action write into what it watches?") == 1  # ... warned once


def test_verbose_says_why_each_change_counts_or_not(src: Path, start_watchd: type[Watchd]) -> None:
    w = start_watchd(["-v", "-p", "*.py", "-i", "gen_*.py", "-c", "true", str(src)], cwd=src)
    (src / "notes.txt").write_text("x")
    (src / "gen_models.py").write_text("x = 1\n")
    (src / "x.pyc").write_text("")
    (src / "app.py").write_text("x = 1\n")
    assert w.wait_log("ran true: exit 0"), w.log()
    log = w.log()
    assert "command: notes.txt not counted (matches none of '*.py')" in log
    assert "command: gen_models.py not counted (ignored by 'gen_*.py')" in log
    assert "command: x.pyc not counted (ignored by '*.pyc', built-in)" in log
    assert "command: created app.py (matches '*.py')" in log


def test_watchd_own_log_in_the_watched_directory_is_no_change(src: Path, start_watchd: type[Watchd]) -> None:
    """`watchd -c true > watchd.log 2>&1` (or nohup's nohup.out) in the directory it watches:
    its own log lines are no change, or it acts on them for ever."""
    w = start_watchd(["-c", "true", "."], cwd=src, log_path=src / "watchd.log")
    (src / "a.txt").write_text("x")
    assert w.wait_log("a.txt changed; ran true"), w.log()
    (src / "b.txt").write_text("x")
    assert w.wait_log("b.txt changed; ran true"), w.log()
    assert w.log().count("; ran true") == 2, w.log()
