"""The installed `watchd` under hostile commands and names: stubborn process trees, floods, storms."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import time
from pathlib import Path

import pytest
from helpers.hostile import HOSTILE_NAMES, create_hostile_files, pwned_files
from helpers.procs import Recorder, Watchd, pid_alive, rss_kib, wait_for

RSS_GROWTH_LIMIT_KIB = 10 * 1024
TIMESTAMP = re.compile(rb"\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def _pids(record: Path) -> list[int]:
    try:
        return [int(p) for p in record.read_text().split()]
    except FileNotFoundError:
        return []


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if pid_alive(p)]


# A process tree that ignores SIGTERM at every level (SIG_IGN is inherited across fork and exec):
# the shell, a sleep, and a nested shell with a sleep of its own. Every one records its PID.
def _stubborn_command(pids: Path) -> str:
    return (
        f"trap '' TERM; echo $$ >> {pids}; "
        f"sleep 60 & echo $! >> {pids}; "
        f"sh -c 'echo $$ >> {pids}; sleep 60 & echo $! >> {pids}; wait' & "
        "wait"
    )


STUBBORN_PIDS = 4  # outer shell, its sleep, the nested shell, its sleep


def test_timeout_kills_a_tree_that_ignores_sigterm(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    pids = tmp_path / "pids"
    w = start_watchd(
        ["--command", _stubborn_command(pids), "--timeout", "300ms", "--stop-timeout", "500ms", str(src)]
    )
    (src / "a.py").write_text("")
    assert wait_for(lambda: len(_pids(pids)) == STUBBORN_PIDS), w.log()
    tree = _pids(pids)
    assert w.wait_log("timed out after 300ms, process group stopped", timeout=5), w.log()
    # TERM is ignored: the KILL after the 0.5 s stop timeout takes the whole group
    assert wait_for(lambda: not _alive(tree), timeout=2), _alive(tree)
    assert w.alive()


def test_sigterm_shutdown_kills_a_tree_that_ignores_sigterm(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    pids = tmp_path / "pids"
    w = start_watchd(["--command", _stubborn_command(pids), "--stop-timeout", "500ms", str(src)])
    (src / "a.py").write_text("")
    assert wait_for(lambda: len(_pids(pids)) == STUBBORN_PIDS), w.log()
    tree = _pids(pids)
    assert _alive(tree) == tree
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=5) == 0, w.log()
    # SIGKILL is sent before watchd exits; a member not scheduled since may take a moment to die
    assert wait_for(lambda: not _alive(tree), timeout=1), _alive(tree)


def test_sigterm_shutdown_stops_stubborn_commands_of_many_watches_together(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    """Each group gets its stop timeout between TERM and KILL: stopped one after another, every
    group after the first would get its TERM only once the one before was killed and reaped.
    Each tree's shell notes, when its TERM comes, how many of the trees' shells are still there
    (its other members go on ignoring TERM, so KILL is still needed): every one, each time.
    (The 2 s stop timeout is the time a shell has to run its trap before its group's KILL.)"""
    watches = 5
    pids = [tmp_path / f"pids{i}" for i in range(watches)]
    shells, terms = tmp_path / "shells", tmp_path / "terms"
    count_shells = (
        f"n=0; for p in $(cat {shells}); do kill -0 $p 2>/dev/null && n=$((n + 1)); done; echo $n >> {terms}"
    )
    # the outer shell notes itself and starts its tree ignoring TERM (its members inherit that),
    # then traps TERM; its first `wait` ends at the TERM (after the trap), the second waits for
    # the tree until the KILL
    commands = [
        f"echo $$ >> {shells}; "
        + _stubborn_command(p).removesuffix("wait")
        + f"trap {shlex.quote(count_shells)} TERM; wait; wait"
        for p in pids
    ]
    config = tmp_path / "watchd.yaml"
    config.write_text(
        "watches:\n"
        + "".join(
            f"  w{i}:\n    paths: [{src}]\n    command: {json.dumps(c)}\n    stop_timeout: 2s\n"
            for i, c in enumerate(commands)
        )
    )
    w = start_watchd(["--config", str(config)])
    (src / "a.py").write_text("")
    assert wait_for(lambda: all(len(_pids(p)) == STUBBORN_PIDS for p in pids)), w.log()
    trees = [pid for p in pids for pid in _pids(p)]
    assert len(shells.read_text().split()) == watches
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=15) == 0, w.log()
    assert wait_for(lambda: not _alive(trees), timeout=5), _alive(trees)
    # every TERM came while every shell was still there: none was stopped before another's TERM
    assert terms.read_text().split() == [str(watches)] * watches, terms.read_text()


def test_command_flooding_stdout_passes_through_without_growing_watchd(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    # Commands inherit watchd's stdout (under systemd: the journal stream). Here it goes to a
    # file of its own rather than the log, so the test can check every byte arrived and keep
    # searching a small log; watchd must pass it through, never buffer it.
    out = tmp_path / "stdout"
    size = 50_000_000
    w = start_watchd(["--command", f"head -c {size} /dev/zero", str(src)], stdout=out)
    before = rss_kib(w.proc.pid)
    (src / "a.py").write_text("")
    assert w.wait_log("exit 0 in", timeout=15), w.log()
    try:
        assert out.stat().st_size == size
        grown = rss_kib(w.proc.pid) - before
        assert grown < RSS_GROWTH_LIMIT_KIB, f"watchd grew by {grown} KiB"
        assert w.alive()
    finally:
        out.unlink()


def test_check_flooding_its_output_keeps_watchd_small_and_logs_the_tail(
    tmp_path: Path, src: Path, start_watchd: type[Watchd]
) -> None:
    # a failing check's output (48 MB of whole lines) is kept for its last lines: in a file, not memory
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    check = "yes flood | head -c 48000000; echo last words; exit 1"
    w = start_watchd(
        ["--command", "true", "--check", check, str(src)],
        # (its control socket in a runtime directory of its own: TMPDIR is for scratch files here)
        env={**os.environ, "TMPDIR": str(scratch), "XDG_RUNTIME_DIR": str(tmp_path)},
    )
    before = rss_kib(w.proc.pid)
    (src / "a.py").write_text("")
    assert w.wait_log("command not run", timeout=15), w.log()
    grown = rss_kib(w.proc.pid) - before
    assert grown < RSS_GROWTH_LIMIT_KIB, f"watchd grew by {grown} KiB"
    assert "failed (exit 1 in" in w.log()
    assert w.log().rstrip().endswith("    | last words")
    # the output file never shows (unlinked at once); the changed-paths list goes after the check
    assert wait_for(lambda: list(scratch.iterdir()) == [], timeout=2), list(scratch.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("on_busy", ["queue", "ignore", "restart"])
def test_trigger_storm_on_a_slow_command(
    tmp_path: Path, src: Path, start_watchd: type[Watchd], on_busy: str
) -> None:
    counter = src / "counter"
    runs = tmp_path / "runs"
    # each run records its shell's and its sleep's PIDs and the counter it started with
    cmd = f'c=$(cat {counter}); sleep 0.2 & echo "$$ $! $c" >> {runs}; wait'
    fd = os.open(counter, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        w = start_watchd(
            ["--command", cmd, "--on-busy", on_busy, "--debounce", "20ms", "--max-delay", "100ms", str(src)]
        )
        before = rss_kib(w.proc.pid)
        # 2,000 writes, ~1 ms apart (a count, not a time: as many on a slow machine); fixed
        # width, so a run never reads a half-written value
        writes = 2000
        for value in range(1, writes + 1):
            os.pwrite(fd, b"%08d" % value, 0)
            time.sleep(0.001)
        final = b"%08d" % writes
    finally:
        os.close(fd)

    def recorded() -> list[list[str]]:
        return [line.split() for line in runs.read_text().splitlines()] if runs.exists() else []

    if on_busy != "ignore":
        # the final state is acted on: a run starts after the last write and reads it
        assert wait_for(lambda: recorded() and recorded()[-1][2] == final.decode(), timeout=5), recorded()
    # With `ignore`, changes that arrive while the command runs are dropped by design, so the
    # last write may land during a run that read an earlier value and never be acted on: only
    # leaks and memory are checked for it.

    def running() -> list[list[str]]:
        return [r for r in recorded() if any(pid_alive(int(p)) for p in r[:2])]

    # settled: a run has read a sentinel written after the storm. The storm's batches were all
    # dispatched before its batch, and their runs recorded before it; then every recorded PID
    # must go. The sentinel is (re)written while no recorded run is alive: with `ignore`, one
    # that lands during a run is dropped, by design.
    def sentinel_ran() -> bool:
        if any(r[2:] == ["sentinel"] for r in recorded()):
            return True
        if not running():
            fd = os.open(counter, os.O_WRONLY)
            try:
                os.pwrite(fd, b"sentinel", 0)  # 8 bytes, as the counter's values
            finally:
                os.close(fd)
        return False

    assert wait_for(sentinel_ran, timeout=10), recorded()[-5:]
    assert wait_for(lambda: not running(), timeout=5), running()
    assert len(recorded()) >= 2
    grown = rss_kib(w.proc.pid) - before
    assert grown < RSS_GROWTH_LIMIT_KIB, f"watchd grew by {grown} KiB"
    assert w.alive()
    assert "Traceback" not in w.log()
    assert "ERROR" not in w.log()


def test_hostile_names_send_one_signal_and_keep_the_log_intact(
    tmp_path: Path, src: Path, recorder: Recorder, start_watchd: type[Watchd]
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    # -v logs every matched event, so every name goes through the log line formatting
    w = start_watchd(
        ["-v", "--pidfile", str(recorder.pidfile), "--debounce", "300ms", "--no-confirm", str(src)], cwd=cwd
    )
    create_hostile_files(src)
    assert w.wait_log("sent HUP", timeout=10), w.log()
    assert wait_for(lambda: recorder.names() == ["SIGHUP"]), recorder.names()
    # one batch held every name: "<first> and N more changed; sent HUP"
    assert f"and {len(HOSTILE_NAMES) - 1} more changed; sent HUP" in w.log()
    assert w.log().count("sent HUP") == 1
    assert pwned_files(tmp_path) == []
    log = w.log_path.read_bytes()
    for line in log.rstrip(b"\n").split(b"\n"):
        assert TIMESTAMP.match(line), f"a log line without a timestamp: {line!r}"
    assert b"\r" not in log
    assert b"\x1b" not in log
    assert w.alive()
