"""An exception nothing foresaw while building a watch or starting its action (a bug, or a call
the platform lacks, as os.pipe2 on macOS) is one error line naming the watch: exit 2 at start
with nothing left running or bound, and on a reload the reload rejected or the watch marked
failed, the running watches untouched. Never a traceback (that is for -v)."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.daemons import running
from helpers.procs import wait_for

from watchd import daemon as daemon_module
from watchd import platform
from watchd.actions import Action, Context, PerBatch
from watchd.actions import build as real_build
from watchd.changes import Batch
from watchd.cli import main
from watchd.daemon import Daemon
from watchd.model import CommandSettings, Config, OnBusy, Watch
from watchd.platform import linux

pytestmark = pytest.mark.usefixtures("restore_watchd_logging")


class Fake(PerBatch):
    """An action that records its lifecycle; `fail_start` makes its start raise, as a bug would."""

    on_busy = OnBusy.QUEUE
    not_done = "not done"
    grace = 0.0

    def __init__(self, name: str, fail_start: bool = False) -> None:
        self.name = name
        self.fail_start = fail_start
        self.started = self.closed = False

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("boom")
        self.started = True

    def execute(self, batch: Batch, stop: threading.Event) -> str | None:
        return None

    def close(self, deadline: float) -> None:
        self.closed = True


def builder(
    made: dict[str, Fake], *, fail_build: str = "", fail_start: str = ""
) -> Callable[[Watch, Context], Action]:
    def build(w: Watch, ctx: Context) -> Action:
        if w.name == fail_build:
            raise RuntimeError("boom")
        made[w.name] = Fake(w.name, fail_start=w.name == fail_start)
        return made[w.name]

    return build


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, text: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "watchd.yaml"
    path.write_text(text)
    return path


TWO = """\
watches:
  a:
    paths: [src]
    command: "true"
  b:
    paths: [src]
    command: "true"
"""


# ------------------------------------------------------------------ at start: exit 2


def test_a_watch_that_cannot_be_built_is_one_line_exit_2_and_frees_what_was_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        f"""\
watches:
  web:
    paths: [src]
    run: ["{sys.executable}", "-c", "pass"]
    listen: 127.0.0.1:{port}
  api:
    paths: [src]
    command: "true"
""",
    )

    def build(w: Watch, ctx: Context) -> Action:
        if w.name == "api":
            raise RuntimeError("boom")
        return real_build(w, ctx)  # web's app binds its listener here, before api fails

    monkeypatch.setattr(daemon_module, "build", build)
    assert main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("\nwatchd: api: could not set up the watch: RuntimeError: boom\n")
    assert "Traceback" not in err
    with socket.socket() as s:  # web's listener was given back: the port is free again
        s.bind(("127.0.0.1", port))


def test_the_one_liner_on_a_platform_without_pipe2_was_a_traceback_and_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Linux's side of the seam on an os without pipe2: the AttributeError the old imports.py
    raised on macOS, now one line and exit 2 (the portable side needs no pipe2 at all: see
    test_platform_files)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("")
    monkeypatch.setattr(platform, "current", linux)
    monkeypatch.delattr(os, "pipe2", raising=False)
    assert main(["--", sys.executable, "app.py"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert err.startswith("watchd: ")
    assert err.endswith(
        ": could not set up the watch: AttributeError: module 'os' has no attribute 'pipe2'\n"
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_an_action_that_cannot_start_is_one_line_exit_2_and_nothing_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    made: dict[str, Fake] = {}
    monkeypatch.setattr(daemon_module, "build", builder(made, fail_start="b"))
    argv = ["--config", str(write_config(tmp_path, TWO))] + (["-v"] if verbose else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "ERROR" in line or "boom" in line]
    assert len([e for e in errors if "could not start" in e]) == 1
    assert "b: could not start: RuntimeError: boom" in err
    assert ("Traceback" in err) == verbose  # the traceback only with -v
    assert made["a"].started and made["a"].closed  # started before b failed, and closed
    assert made["b"].closed
    assert "; ready" not in err  # no ready line (the -v traceback's paths may hold the word)


# ------------------------------------------------------------------ on a reload


@contextmanager
def reloading(first: Config, *later: Config) -> Iterator[Daemon]:
    """The daemon of `first`, whose reloads take the configs of `later` in turn."""
    configs = list(reversed(later))  # pop() takes them in order
    with running(first, reload=configs.pop) as daemon:
        yield daemon


def reload(daemon: Daemon) -> None:
    before = daemon.reloads
    daemon.request_reload()
    assert wait_for(lambda: daemon.reloads > before)


def watch(tmp_path: Path, name: str, command: str = "true") -> Watch:
    (tmp_path / "src").mkdir(exist_ok=True)
    return Watch(name, (tmp_path / "src",), CommandSettings(command=command, cwd=tmp_path))


def test_a_reload_whose_watch_cannot_be_built_is_rejected_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    made: dict[str, Fake] = {}
    monkeypatch.setattr(daemon_module, "build", builder(made, fail_build="b"))
    a = watch(tmp_path, "a")
    with reloading(Config((a,)), Config((a, watch(tmp_path, "b")))) as daemon:
        first = made["a"]
        reload(daemon)
        errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
        assert [rec.getMessage() for rec in errors] == [
            "config not reloaded, still running the previous one: b: could not set up the watch: "
            "RuntimeError: boom"
        ]
        assert all(rec.exc_info is None for rec in caplog.records)  # no traceback without -v
        assert made["a"] is first and not first.closed  # the running watch untouched
        assert daemon.status().startswith("config error, running the previous config: b: ")


def test_a_reload_whose_watch_cannot_start_marks_it_failed_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="watchd")
    made: dict[str, Fake] = {}
    monkeypatch.setattr(daemon_module, "build", builder(made, fail_start="b"))
    a = watch(tmp_path, "a")
    with reloading(Config((a,)), Config((a, watch(tmp_path, "b"))), Config((a,))) as daemon:
        first = made["a"]
        reload(daemon)
        errors = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
        assert errors == [
            "b: could not start: RuntimeError: boom; the watch is stopped until the next reload"
        ]
        assert all(rec.exc_info is None for rec in caplog.records)
        assert "1 failed to start: b" in caplog.text
        assert made["b"].closed  # nothing of it left running
        assert not first.closed  # the unchanged watch went on
        assert daemon.status().startswith("failed at the last reload: b: could not start: RuntimeError: boom")
        reload(daemon)  # a config without b: the mark goes
        assert not daemon.status().startswith("failed")
