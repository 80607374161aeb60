"""What Linux's /proc says about a process: one parser for /proc/PID/stat, shared by the
pidfile checks (is this the server?) and reload confirmation (were its workers replaced?)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProcStat:
    name: str  # the kernel's short name (comm)
    state: str  # R, S, D, Z (zombie), X (dead), ...
    ppid: int
    pgrp: int  # process group
    start_ticks: int  # start time after boot, in clock ticks: a reused PID has another

    @property
    def exited(self) -> bool:
        """Zombie or dead: it runs nothing, only its reaping is pending (kill(pid, 0) still succeeds)."""
        return self.state in ("Z", "X", "x")


def available() -> bool:
    """False where there is no procfs (macOS)."""
    return os.path.exists("/proc/self/stat")


def parse_stat(raw: str) -> ProcStat:
    # comm is in parentheses and may itself contain ') ': the last ')' ends it
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(name, fields[0], int(fields[1]), int(fields[2]), int(fields[19]))


def read_stat(pid: int) -> ProcStat | None:
    """The process's /proc/PID/stat, or None if it is gone. Other errors (EACCES) are raised."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_stat(raw)


def group_running(pgid: int) -> bool:
    """Whether any process of group `pgid` still runs (zombies do not: they only await reaping,
    which an init that does not reap, as in some containers, may never do)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = read_stat(int(entry.name))
        except OSError:
            continue  # gone between the listing and the read, or not ours to read
        if stat is not None and stat.pgrp == pgid and not stat.exited:
            return True
    return False
