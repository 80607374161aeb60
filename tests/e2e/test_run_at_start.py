"""run_at_start (--run-at-start): a command watch's command once at start, then on every change;
off by default, as watchmedo's (a signal watch never signals at start)."""

from __future__ import annotations

import os
from pathlib import Path

from helpers.notify import NotifySocket
from helpers.procs import Recorder, Watchd, wait_for

RECORD = 'echo "$WATCHD_TRIGGER $WATCHD_COUNT" >> runs.txt'


def runs(tmp_path: Path) -> list[str]:
    path = tmp_path / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_run_at_start_runs_the_command_once_with_an_empty_batch_then_on_changes(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    w = start_watchd(["--run-at-start", "-c", RECORD, "--cwd", str(tmp_path), str(src)])
    assert wait_for(lambda: runs(tmp_path) == ["start 0"]), w.log()
    assert w.wait_log("command: at start; ran"), w.log()
    (src / "a.py").write_text("")
    assert wait_for(lambda: runs(tmp_path) == ["start 0", "change 1"]), w.log()


def test_without_it_nothing_runs_before_the_first_change(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    w = start_watchd(["-c", RECORD, "--cwd", str(tmp_path), str(src)])
    (src / "sentinel.py").write_text("")  # the first run: the sentinel's change
    assert wait_for(lambda: runs(tmp_path) != []), w.log()
    assert runs(tmp_path) == ["change 1"], w.log()
    assert "at start" not in w.log()


def test_defaults_run_at_start_goes_through_the_check_and_never_signals_a_server(
    tmp_path: Path, src: Path, recorder: Recorder, start_watchd: type[Watchd]
) -> None:
    """In defaults: it applies to the command watches only (a signal watch takes no run_at_start),
    and the start run meets the check like any run: here the check fails until ok exists."""
    config = tmp_path / "watchd.yaml"
    config.write_text(
        "defaults:\n  run_at_start: true\n"
        "watches:\n"
        f"  build:\n    paths: [{src}]\n    check: test -e {tmp_path}/ok\n    command: '{RECORD}'\n"
        f"  hup:\n    paths: [{src}]\n    pidfile: {recorder.pidfile}\n"
    )
    w = start_watchd(["--config", str(config)], cwd=tmp_path)
    assert w.wait_log("build: at start; check test -e"), w.log()
    assert w.wait_log("command not run"), w.log()
    (tmp_path / "ok").write_text("")
    (src / "a.py").write_text("")
    assert wait_for(lambda: runs(tmp_path) == ["change 1"]), w.log()
    assert wait_for(lambda: recorder.names() == ["SIGHUP"]), w.log()  # the change's, not the start's


def test_on_busy_applies_to_the_start_run(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    """A change while the start run runs: with on_busy: ignore it is dropped, as for any run."""
    started = tmp_path / "started"
    cmd = f"{RECORD}; touch {started}; while [ ! -e {tmp_path}/go ]; do sleep 0.02; done"
    w = start_watchd(["--run-at-start", "--on-busy", "ignore", "-c", cmd, "--cwd", str(tmp_path), str(src)])
    assert wait_for(started.exists), w.log()
    (src / "during.py").write_text("")
    assert w.wait_log("still running; ignoring"), w.log()
    (tmp_path / "go").write_text("")
    assert w.wait_log("at start; ran"), w.log()
    (src / "after.py").write_text("")
    assert wait_for(lambda: len(runs(tmp_path)) == 2), w.log()
    assert runs(tmp_path) == ["start 0", "change 1"]


def test_ready_is_not_delayed_by_the_start_run(tmp_path: Path, src: Path, start_watchd: type[Watchd]) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        env = dict(os.environ, NOTIFY_SOCKET=str(notify.path))
        gate = tmp_path / "go"
        cmd = f"{RECORD}; while [ ! -e {gate} ]; do sleep 0.02; done"
        w = start_watchd(
            ["--run-at-start", "-c", cmd, "--cwd", str(tmp_path), str(src)], env=env, wait_ready=False
        )
        notify.wait("READY", "1")
        assert wait_for(lambda: runs(tmp_path) == ["start 0"]), w.log()
        assert "at start; ran" not in w.log()  # READY=1 came while the start run still runs
        gate.write_text("")
        assert w.wait_log("at start; ran"), w.log()
    finally:
        notify.close()
