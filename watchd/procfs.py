"""What Linux's /proc says about a process: one parser for /proc/PID/stat, shared by the
pidfile checks (is this the server?) and reload confirmation (were its workers replaced?)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
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


def fd_path(fd: int) -> str | None:
    """The path this process's descriptor `fd` was opened by (/proc/self/fd/N), or None."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return path if path.startswith("/") else None  # "pipe:[123]", "socket:[45]"


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


def group_states(pgid: int) -> dict[int, str]:
    """The processes of group `pgid` that have not exited, with their state letters.

    Zombies do not count: they only await reaping, which an init that does not reap (as in
    some containers) may never do.
    """
    found: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = read_stat(int(entry.name))
        except OSError:
            continue  # gone between the listing and the read, or not ours to read
        if stat is not None and stat.pgrp == pgid and not stat.exited:
            found[int(entry.name)] = stat.state
    return found


def read_uids(pid: int) -> tuple[int, int] | None:
    """(real, effective) UID of `pid` from /proc/PID/status; None if it is gone. EACCES raises."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    fields = line.split()
                    return int(fields[1]), int(fields[2])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def read_cgroup(pid: int) -> str | None:
    """/proc/PID/cgroup; None if it is gone. EACCES raises."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is stopped (SIGSTOP reaches threads one by one) or gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True  # gone
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                state = parse_stat(f.read().decode("utf-8", "replace")).state
        except (OSError, ValueError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X", "x"):
            return False
    return True


def group_running(pgid: int) -> bool:
    """Whether any process of group `pgid` still runs (zombies do not)."""
    return bool(group_states(pgid))


def socket_inodes(pids: Iterable[int]) -> set[int]:
    """The inodes of the sockets these processes hold open."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


_TCP_ESTABLISHED = 1
_UNIX_CONNECTED = "03"
_NETLINK_SOCK_DIAG = 4  # not in Python's socket module
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NLMSG_DONE, _NLMSG_ERROR = 3, 2


def _established_tcp(port: int) -> list[int] | None:
    """Inodes of established TCP sockets whose local port is `port`, asked of the kernel over
    NETLINK_SOCK_DIAG (it filters by state itself: /proc/net/tcp lists every TIME_WAIT socket
    on the machine, thousands after a burst of requests, and costs milliseconds to read).
    None if netlink is unavailable."""
    import socket  # noqa: PLC0415 (only when an app with a listener is stopped)
    import struct  # noqa: PLC0415

    found: list[int] = []
    try:
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG)
    except OSError:
        return None
    with nl:
        for family in (socket.AF_INET, socket.AF_INET6):
            # nlmsghdr + inet_diag_req_v2 (the socket id left zero: every socket in those states)
            req = struct.pack("=BBBxI48x", family, socket.IPPROTO_TCP, 0, 1 << _TCP_ESTABLISHED)
            nl.send(
                struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0) + req
            )
            done = False
            while not done:
                data = nl.recv(65536)
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if kind == _NLMSG_ERROR and struct.unpack_from("=i", data, offset + 16)[0] != 0:
                        return None  # e.g. no inet_diag in this kernel: read /proc/net/tcp instead
                    if kind in (_NLMSG_DONE, _NLMSG_ERROR) or length < 16:
                        done = True
                        break
                    # inet_diag_msg: family, state, timer, retrans, then the id: sport (big-endian) ...
                    msg = offset + 16
                    sport = struct.unpack_from(">H", data, msg + 4)[0]
                    inode = struct.unpack_from("=I", data, msg + 68)[0]
                    if sport == port:
                        found.append(inode)
                    offset += (length + 3) & ~3
    return found


def accepted_connections(inodes: set[int], *, port: int = 0, path: str = "") -> int:
    """How many of these sockets are connections accepted on a listener: TCP ones established on
    local `port`, or Unix ones connected on socket file `path`. Outgoing connections (a database
    pool) have other local ports and do not count."""
    if not inodes:
        return 0
    count = 0
    if path:
        with contextlib.suppress(OSError), open("/proc/net/unix") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) >= 8 and fields[5] == _UNIX_CONNECTED and fields[7] == path:
                    count += int(fields[6]) in inodes
        return count
    established = _established_tcp(port)
    if established is not None:
        return sum(1 for inode in established if inode in inodes)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 10 or fields[3] != f"{_TCP_ESTABLISHED:02X}":
                    continue
                if int(fields[1].rsplit(":", 1)[1], 16) == port and int(fields[9]) in inodes:
                    count += 1
    return count
