"""Process identity through both sides of the platform seam, against real processes these tests
start: the Linux side (/proc, pidfd, waitid) and the Darwin side (psutil, whose Linux backend runs
here) must say the same of the same process -- PID, parent, name, state, start, command line,
owner, children, process group -- and the process-group handling of actions/process.py must work
on either."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers.procs import group_pids, proc_state, stop_process, wait_for

from watchd.actions.process import spawn
from watchd.model import Stop
from watchd.platform import darwin, linux

SIDES = [pytest.param(linux, id="linux"), pytest.param(darwin, id="darwin")]
NOBODY = 65534

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def procs() -> Iterator[Spawn]:
    """Start processes, each leading a process group of its own; every group is stopped and
    every process reaped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.returncode is None:
            stop_process(p, signal.SIGKILL)
        if p.stdout is not None:
            p.stdout.close()


def state_of(pid: int) -> str | None:
    """The kernel's word on `pid`'s state, whichever side is tested (psutil: in the macOS-profile
    lane too, where Linux's side may not read /proc)."""
    return proc_state(pid)


@pytest.mark.linux_only("compares the Darwin side with Linux's side (/proc) as the kernel's word")
def test_both_sides_describe_a_sleeping_child_alike(procs: Spawn) -> None:
    before = linux.uptime()
    child = procs("sleep", "60")
    after = linux.uptime()
    assert wait_for(lambda: state_of(child.pid) == "S")

    lin, dar = linux.process_info(child.pid), darwin.process_info(child.pid)

    assert lin is not None and dar is not None
    assert (lin.pid, lin.ppid, lin.name, lin.state) == (child.pid, os.getpid(), "sleep", "S")
    assert (dar.pid, dar.ppid, dar.name, dar.state) == (lin.pid, lin.ppid, lin.name, lin.state)
    assert not lin.exited and not dar.exited and not lin.stopped and not dar.stopped
    # the same start on the same clock (seconds since boot); one clock tick of resolution
    assert dar.started == pytest.approx(lin.started, abs=1e-6)
    tick = linux.start_resolution()
    assert before - tick <= lin.started <= after + tick


@pytest.mark.parametrize("side", SIDES)
def test_a_start_time_is_stable_for_one_process(procs: Spawn, side: ModuleType) -> None:
    child = procs("sleep", "60")
    seen = set()
    for _ in range(20):
        info = side.process_info(child.pid)
        assert info is not None
        seen.add(info.started)
    assert len(seen) == 1  # compared with == before kill(): it must not wobble


@pytest.mark.parametrize("side", SIDES)
def test_uptime_is_the_clock_of_start_times(procs: Spawn, side: ModuleType) -> None:
    before = side.uptime()
    child = procs("sleep", "60")
    after = side.uptime()
    info = side.process_info(child.pid)
    assert info is not None
    slack = side.start_resolution()
    assert before - slack <= info.started <= after + slack
    if sys.platform == "linux":  # the kernel's CLOCK_BOOTTIME (not in the macOS profile)
        # read between two readings of the kernel's clock: on it, however long each read took
        first = linux.uptime()
        read = side.uptime()
        last = linux.uptime()
        assert first <= read <= last, (first, read, last)


def test_darwins_clock_without_a_boot_clock_is_the_wall_clock_less_the_boot_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """macOS's time module has no CLOCK_BOOTTIME: the Darwin side then counts from psutil's boot
    time. Here that boot time is Linux's /proc/stat btime, in whole seconds: up to 1 s early."""
    boottime = time.CLOCK_BOOTTIME
    monkeypatch.delattr(time, "CLOCK_BOOTTIME")
    first = time.clock_gettime(boottime)
    wall = darwin.uptime()
    last = time.clock_gettime(boottime)
    # between the two readings, but up to 1 s late (the boot time early); 50 ms for the wall
    # clock's and the boot clock's disagreement, not for the time the reads take
    assert first - 0.05 < wall < last + 1.05, (first, wall, last)


@pytest.mark.parametrize("side", SIDES)
def test_command_line_and_owner(procs: Spawn, side: ModuleType) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "a marker with spaces", "ünïcode"]
    child = procs(*argv)
    # empty for a moment after exec() (the kernel sets the new one up after the old is gone)
    assert wait_for(lambda: side.cmdline(child.pid)), side.cmdline(child.pid)
    assert side.cmdline(child.pid) == argv
    assert side.uids(child.pid) == (os.getuid(), os.geteuid())


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.parametrize("side", SIDES)
def test_another_users_process_is_owned_by_that_user(procs: Spawn, side: ModuleType) -> None:
    child = procs("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "sleep", "60")
    assert wait_for(lambda: side.cmdline(child.pid) == ["sleep", "60"])  # setpriv has exec'd
    assert side.uids(child.pid) == (NOBODY, NOBODY)


@pytest.mark.parametrize("side", SIDES)
def test_a_zombie_has_exited_runs_nothing_and_is_no_child(procs: Spawn, side: ModuleType) -> None:
    child = procs("true")  # exits at once; not waited for: a zombie
    assert wait_for(lambda: state_of(child.pid) == "Z")

    info = side.process_info(child.pid)

    assert info is not None and info.exited and info.state == "Z"
    assert info.ppid == os.getpid()
    assert side.cmdline(child.pid) == []
    assert child.pid not in side.children(os.getpid())


@pytest.mark.parametrize("side", SIDES)
def test_a_reaped_process_is_gone(procs: Spawn, side: ModuleType) -> None:
    child = procs("true")
    child.wait(10)  # reaped: its PID names no process now

    assert side.process_info(child.pid) is None
    assert side.cmdline(child.pid) is None
    assert side.uids(child.pid) is None
    assert side.children(child.pid) == {}
    assert side.all_threads_stopped(child.pid)  # nothing of it runs


@pytest.mark.linux_only("cgroups (unit:)")
def test_cgroups_are_linuxs(procs: Spawn) -> None:
    child = procs("sleep", "60")
    text = linux.cgroup(child.pid)
    assert text is not None and text == linux.cgroup(os.getpid())  # a child starts in its parent's
    assert all(line.count(":") >= 2 for line in text.splitlines())  # hierarchy:controllers:path
    assert darwin.cgroup(child.pid) == ""  # in no unit: `unit:` needs Linux
    child.kill()
    child.wait(10)
    assert linux.cgroup(child.pid) is None


@pytest.mark.linux_only("compares the Darwin side with Linux's side (/proc) as the kernel's word")
def test_both_sides_list_the_same_children(procs: Spawn) -> None:
    shell = procs("sh", "-c", "sleep 60 & sleep 60 & wait")
    assert wait_for(lambda: len(linux.children(shell.pid)) == 2)

    lin, dar = linux.children(shell.pid), darwin.children(shell.pid)

    assert set(dar) == set(lin)
    for pid, started in lin.items():
        assert dar[pid] == pytest.approx(started, abs=1e-6)
        assert linux.children(pid) == darwin.children(pid) == {}  # the sleeps have none


GROUP = """
import os, subprocess, sys, time
zombie = os.fork()
if zombie == 0:
    os._exit(0)  # never reaped while this runs: a zombie member of the group
sleeper = subprocess.Popen(["sleep", "60"])
print(zombie, sleeper.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.linux_only("compares the Darwin side with Linux's side (/proc) as the kernel's word")
def test_both_sides_list_the_same_group_members_and_leave_out_zombies(procs: Spawn) -> None:
    leader = procs(sys.executable, "-c", GROUP, stdout=subprocess.PIPE)
    assert leader.stdout is not None
    zombie, sleeper = (int(x) for x in leader.stdout.readline().split())
    assert wait_for(lambda: state_of(zombie) == "Z")
    assert wait_for(lambda: state_of(leader.pid) == state_of(sleeper) == "S")

    lin, dar = linux.group_members(leader.pid), darwin.group_members(leader.pid)

    assert lin == dar == {leader.pid: "S", sleeper: "S"}
    assert linux.group_members(os.getpgrp()).get(os.getpid()) in ("R", "S")
    assert darwin.group_members(os.getpgrp()).get(os.getpid()) in ("R", "S")


THREADS = """
import threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("side", SIDES)
def test_a_stopped_process_is_seen_stopped_then_running_again(procs: Spawn, side: ModuleType) -> None:
    child = procs(sys.executable, "-c", THREADS, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    assert not side.all_threads_stopped(child.pid)

    os.kill(child.pid, signal.SIGSTOP)
    assert wait_for(lambda: side.all_threads_stopped(child.pid))
    info = side.process_info(child.pid)
    assert info is not None and info.stopped

    os.kill(child.pid, signal.SIGCONT)
    assert wait_for(lambda: not side.all_threads_stopped(child.pid))


@pytest.mark.linux_only("pidfd")
def test_linux_signals_through_a_pidfd_and_darwin_has_none(procs: Spawn) -> None:
    child = procs("sleep", "60")
    fd = linux.pidfd_open(child.pid)
    assert fd is not None
    try:
        linux.pidfd_send_signal(fd, 0)  # it runs, and may be signalled
        linux.pidfd_send_signal(fd, signal.SIGTERM)
        assert child.wait(10) == -signal.SIGTERM
        with pytest.raises(ProcessLookupError):  # reaped: the pidfd's process is gone for good
            linux.pidfd_send_signal(fd, 0)
    finally:
        os.close(fd)
    with pytest.raises(ProcessLookupError):
        linux.pidfd_open(child.pid)

    other = procs("sleep", "60")
    assert darwin.pidfd_open(other.pid) is None
    with pytest.raises(OSError, match="no pidfds") as raised:
        darwin.pidfd_send_signal(0, 0)
    assert raised.value.errno == errno.ENOSYS


@pytest.mark.linux_only("waitid(WNOWAIT)")
@pytest.mark.parametrize(
    ("argv", "status"), [(("sh", "-c", "exit 3"), 3), (("sleep", "60"), -signal.SIGTERM)]
)
def test_linux_waits_for_a_child_without_reaping_it(procs: Spawn, argv: tuple[str, ...], status: int) -> None:
    child = procs(*argv)
    if argv[0] == "sleep":
        os.kill(child.pid, signal.SIGTERM)

    assert linux.wait_unreaped(child.pid) == status
    assert state_of(child.pid) == "Z"  # held: its PID (and group id) cannot be another's yet
    assert child.wait(10) == status  # and the status is still there for the reaper


def test_darwin_reaps_the_leader_instead() -> None:
    assert linux.HOLD_ZOMBIE_LEADER and not darwin.HOLD_ZOMBIE_LEADER
    with pytest.raises(OSError, match="without reaping"):
        darwin.wait_unreaped(os.getpid())


# ------------------------------------------------------------------ actions/process.py on each side


def test_a_childs_group_is_stopped_and_gone(side: ModuleType, tmp_path: Path) -> None:
    child = spawn("sleep 60 & sleep 60 & wait", cwd=tmp_path, env=dict(os.environ))
    try:
        assert wait_for(lambda: len(side.group_members(child.pgid)) == 3)  # sh and its 2 sleeps
        assert child.group_running()

        stopped = child.stop(Stop(signal.SIGTERM, 5.0))

        assert stopped.code == -signal.SIGTERM
        assert not stopped.killed and not stopped.lingering
        assert not child.group_running()
        assert group_pids(child.pgid) == []
    finally:
        if not child.done.is_set():
            os.killpg(child.pgid, signal.SIGKILL)  # our child's own group
            child.done.wait(5)
        child.reap()


def test_the_leader_is_held_unreaped_only_where_the_side_can(side: ModuleType, tmp_path: Path) -> None:
    child = spawn(("true",), cwd=tmp_path, env=dict(os.environ))
    try:
        assert child.done.wait(10)
        assert child.code == 0
        assert not child.group_running()  # a held zombie leader is no running member
        held = proc_state(child.pid)  # the kernel's word, whichever side watchd used
        if side.HOLD_ZOMBIE_LEADER:
            assert held == "Z"
        else:
            assert held is None  # reaped at once
    finally:
        child.reap()
    assert proc_state(child.pid) is None


# ------------------------------------------------------------------ the Darwin side reads no /proc

AUDIT = """
import os, signal, subprocess, sys
child = subprocess.Popen(["sleep", "60"], start_new_session=True)

def hook(event, args):
    # what macOS lacks: /proc, opened or listed by anything but psutil (whose Linux backend reads it)
    if event in ("open", "os.listdir", "os.scandir") and str(args[0]).startswith("/proc"):
        frame = sys._getframe(1)
        while frame is not None:
            if os.sep + "psutil" + os.sep in frame.f_code.co_filename:
                return
            frame = frame.f_back
        raise RuntimeError(f"{{event}} {{args[0]}} outside psutil")

sys.addaudithook(hook)
from watchd.platform import {side} as side
try:
    assert side.process_info(child.pid).ppid == os.getpid()
    assert side.cmdline(child.pid) is not None and side.uids(child.pid) is not None
    assert side.cgroup(child.pid) is not None
    assert child.pid in side.children(os.getpid())
    assert child.pid in side.group_members(child.pid)
    assert not side.all_threads_stopped(child.pid)
    side.uptime(), side.start_resolution(), side.pidfd_open(child.pid)
    print("read no /proc", flush=True)
finally:
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
"""


@pytest.mark.parametrize(("side", "clean"), [("darwin", True), ("linux", False)])
def test_the_darwin_side_itself_reads_no_proc(side: str, clean: bool) -> None:
    """An audit hook refuses /proc to everything but psutil: the Darwin side's every process
    identity call passes (so on a Mac, where psutil asks sysctl, nothing asks for /proc); the
    Linux side's does not, which shows the hook has teeth."""
    r = subprocess.run(
        [sys.executable, "-c", AUDIT.format(side=side)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if clean:
        assert r.returncode == 0 and "read no /proc" in r.stdout, r.stderr
    else:
        assert r.returncode != 0 and "outside psutil" in r.stderr, r.stderr
