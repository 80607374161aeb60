"""The daemon loop in-process (on a thread, signals not installed) with real files and processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.daemons import running
from helpers.procs import Recorder, wait_for

from watchd.daemon import _EVENT_BYTE
from watchd.model import CommandSettings, Config, PidfileSettings, Watch


def test_a_slow_command_does_not_delay_another_watchs_signal(tmp_path: Path, recorder: Recorder) -> None:
    slow_dir, fast_dir = tmp_path / "slow", tmp_path / "fast"
    slow_dir.mkdir()
    fast_dir.mkdir()
    started, gate = tmp_path / "started", tmp_path / "gate"
    config = Config(
        watches=(
            Watch(
                "slow",
                (slow_dir,),
                CommandSettings(
                    command=f"touch {started}; while [ ! -e {gate} ]; do sleep 0.02; done", cwd=tmp_path
                ),
            ),
            Watch("fast", (fast_dir,), PidfileSettings(recorder.pidfile)),
        )
    )
    with running(config):
        (slow_dir / "a").write_text("")
        assert wait_for(started.exists)
        (fast_dir / "b").write_text("")
        assert wait_for(lambda: recorder.names() == ["SIGHUP"])
        assert not gate.exists()  # the slow command was still running throughout
        gate.touch()


def test_endless_churn_still_acts_at_max_delay(tmp_path: Path) -> None:
    """On an injected clock: each write is received 50 ms after the one before, on any machine, so
    the 200 ms debounce never ends; only max_delay (500 ms after the first) can close the batch.
    The clock stands still while the test waits, so the loop wakes when the test wakes it (as it
    would by itself when a deadline came) and acts only when the clock says a deadline is due."""
    src = tmp_path / "src"
    src.mkdir()
    runs = tmp_path / "runs"
    config = Config(
        watches=(
            Watch(
                "churn",
                (src,),
                CommandSettings(command=f"echo ran >> {runs}", cwd=tmp_path),
                debounce=0.2,
                max_delay=0.5,
            ),
        )
    )
    start = time.monotonic()
    now = [start]
    with running(config, clock=lambda: now[0]) as daemon:
        batcher = next(iter(daemon._active.values())).batcher

        def taken(count: int) -> bool:
            daemon._wake(_EVENT_BYTE)  # the loop takes what has come, and acts if the clock says so
            return len(batcher) > count

        for step in range(10):  # received at start, start + 0.05, ... start + 0.45
            now[0] = start + step * 0.05
            before = len(batcher)
            (src / f"f{step}").write_text("")
            assert wait_for(lambda b=before: taken(b)), f"write {step} never reached the batch"
            assert not runs.exists()  # still open: churn, and max_delay not reached
        now[0] = start + 0.5  # the first change's max_delay is up; still no quiet

        def acted() -> bool:
            daemon._wake(_EVENT_BYTE)
            return runs.exists()

        # (a write's last events may come after the action, into a new batch that then stays
        # open: the clock stands still)
        assert wait_for(acted), "no action at max_delay"
        assert runs.read_text() == "ran\n"
        now[0] = time.monotonic()  # the real clock for the shutdown: the workers' grace is on it


def test_dry_run_signals_nothing(
    tmp_path: Path, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    config = Config(watches=(Watch("api", (src,), PidfileSettings(recorder.pidfile)),))
    caplog.set_level("INFO")
    with running(config, dry_run=True):
        (src / "app.py").write_text("")
        assert wait_for(lambda: "would send HUP" in caplog.text)
    assert recorder.names() == []


def test_late_single_file_root(tmp_path: Path, recorder: Recorder) -> None:
    settings = tmp_path / "conf" / "settings.ini"
    config = Config(watches=(Watch("cfg", (settings,), PidfileSettings(recorder.pidfile)),))
    with running(config):
        settings.parent.mkdir()
        settings.write_text("a=1")
        assert wait_for(lambda: recorder.names() == ["SIGHUP"])
        settings.write_text("a=2")
        assert wait_for(lambda: recorder.names() == ["SIGHUP", "SIGHUP"])
