"""Process identity's pure parts on each side of the platform seam: /proc/PID/stat's parser
(Linux) and psutil's statuses as state letters (Darwin). Real processes: tests/integration/
test_platform_identity.py."""

from __future__ import annotations

import os

import psutil
import pytest

from watchd.platform import darwin, linux
from watchd.platform.identity import ProcessInfo

# a real line's shape: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
# cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime ...
STAT = "4242 ({comm}) S 17 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 {start} 9 ..."


@pytest.mark.parametrize("comm", ["gunicorn", "a) b (c", "py) S 1 2", ""])
def test_stat_is_parsed_whatever_the_command_name_holds(comm: str) -> None:
    info = linux._parse_stat(4242, STAT.format(comm=comm, start=123456))
    started = 123456 / os.sysconf("SC_CLK_TCK")
    assert info == ProcessInfo(pid=4242, ppid=17, name=comm, state="S", started=started)


@pytest.mark.parametrize(
    ("state", "exited", "stopped"),
    [("R", False, False), ("S", False, False), ("D", False, False), ("T", False, True),
     ("t", False, True), ("Z", True, False), ("X", True, False), ("x", True, False)],
)  # fmt: skip
def test_exited_and_stopped_read_the_state_letter(state: str, exited: bool, stopped: bool) -> None:
    info = ProcessInfo(1, 0, "init", state, 0.0)
    assert (info.exited, info.stopped) == (exited, stopped)


def test_every_psutil_status_has_a_state_letter() -> None:
    statuses = [v for k, v in vars(psutil).items() if k.startswith("STATUS_")]
    assert statuses
    assert all(darwin._state(s) != "?" for s in statuses), statuses
    assert darwin._state(psutil.STATUS_ZOMBIE) == "Z"
    assert darwin._state(psutil.STATUS_STOPPED) == "T"
    assert darwin._state(psutil.STATUS_SLEEPING) == "S"
    assert darwin._state(psutil.STATUS_RUNNING) == "R"
