"""The daemon loop in-process (on a thread, signals not installed) with real files and processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.procs import Recorder, wait_for

from watchd.daemon import Daemon
from watchd.model import CommandSettings, Config, PidfileSettings, Watch


@contextmanager
def running(config: Config, **kwargs: object) -> Iterator[Daemon]:
    daemon = Daemon(config, handle_signals=False, **kwargs)  # type: ignore[arg-type]
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(daemon.run()), name="daemon-under-test")
    t.start()
    try:
        assert daemon.ready.wait(10)
        yield daemon
    finally:
        daemon.stop()
        t.join(5)
        assert not t.is_alive()
        assert result == [0]


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
    src = tmp_path / "src"
    src.mkdir()
    runs = tmp_path / "runs"
    config = Config(
        watches=(
            Watch(
                "churn",
                (src,),
                CommandSettings(command=f"date +%s.%N >> {runs}", cwd=tmp_path),
                debounce=0.2,
                max_delay=0.5,
            ),
        )
    )
    with running(config):
        t0 = time.monotonic()
        while not runs.exists():  # a write every 20 ms: never quiet for the 200 ms debounce
            (src / "f").write_text(str(time.monotonic()))
            time.sleep(0.02)  # the writer's pace, not a wait for a result
            # without max_delay the churn never leaves 200 ms of quiet, and this never ends
            assert time.monotonic() - t0 < 10, "no action despite max_delay"


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
