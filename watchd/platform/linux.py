"""The Linux side of the platform seam (see watchd.platform): /proc, pidfd, memfd, inotify's libc."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from watchd import mounts
from watchd.platform.identity import ProcessInfo

if TYPE_CHECKING:
    import socket

NAME = "linux"

# ----------------------------------------------------------------------------- process identity
# /proc read directly, not through psutil: the signal path reads /proc/PID/stat and cmdline once
# each, and psutil's import alone would add to every start. Imports stay inside the functions,
# as in the section below.


def process_info(pid: int) -> ProcessInfo | None:
    """What /proc/PID/stat says of `pid`; None if it is gone. PermissionError where it may not be
    read (hidepid, another user's): unknown, which callers must never take for gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    return _parse_stat(pid, raw)


def _parse_stat(pid: int, raw: str) -> ProcessInfo:
    import os  # noqa: PLC0415 (see the section's note)

    # comm is in parentheses and may itself contain ') ': the last ')' ends it
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # starttime (field 22) is in clock ticks since boot: on uptime()'s clock once divided
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return ProcessInfo(pid, int(fields[1]), name, fields[0], started)


def cmdline(pid: int) -> list[str] | None:
    """The command line `pid` was started with (/proc/PID/cmdline; empty for a zombie); None if
    it is gone. PermissionError where it may not be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if not raw:
        return []
    return [a.decode("utf-8", "backslashreplace") for a in raw.rstrip(b"\0").split(b"\0")]


def uids(pid: int) -> tuple[int, int] | None:
    """(real, effective) UID of `pid` (/proc/PID/status); None if it is gone. PermissionError
    where it may not be read."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    fields = line.split()
                    return int(fields[1]), int(fields[2])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cgroup(pid: int) -> str | None:
    """The cgroups `pid` is in, as /proc/PID/cgroup lists them (trust.in_unit reads it); None if
    it is gone. PermissionError where it may not be read. (A side without cgroups: "".)"""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def children(pid: int) -> dict[int, float]:
    """The live (not zombie) children of `pid`, each with its start time (ProcessInfo.started),
    from /proc/PID/task/*/children, or a scan of /proc where the kernel has no such file. Empty
    if `pid` is gone or cannot be read."""
    import os  # noqa: PLC0415 (see the section's note)

    kids: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(x) for x in f.read().split())
    except FileNotFoundError:
        kids = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                info = _readable(int(entry))
                if info is not None and info.ppid == pid:
                    kids.add(int(entry))
    except OSError:
        return {}
    out: dict[int, float] = {}
    for kid in kids:
        info = _readable(kid)  # /proc's list may be a moment old: the process says whose it is
        if info is not None and not info.exited and info.ppid == pid:
            out[kid] = info.started
    return out


def user_processes(uid: int) -> list[tuple[ProcessInfo, list[str]]]:
    """The live (not zombie) processes whose real and effective UID are both `uid`, each with its
    command line (a scan of /proc). Processes that exit meanwhile or cannot be read are left out."""
    import os  # noqa: PLC0415 (see the section's note)

    found: list[tuple[ProcessInfo, list[str]]] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if uids(pid) != (uid, uid):
                continue
            info = process_info(pid)
            argv = cmdline(pid)
        except OSError:
            continue  # gone between the listing and the reads, or not ours to read
        if info is not None and argv is not None and not info.exited:
            found.append((info, argv))
    return found


def _readable(pid: int) -> ProcessInfo | None:
    """process_info(), with a process that cannot be read taken as gone (for scans)."""
    try:
        return process_info(pid)
    except OSError:
        return None


def group_members(pgid: int) -> dict[int, str]:
    """The processes of group `pgid` that have not exited, with their state letters (a scan of
    /proc). Zombies do not count: they only await reaping, which an init that does not reap (as
    in some containers) may never do. Processes that cannot be read are left out."""
    import os  # noqa: PLC0415 (see the section's note)

    found: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # gone between the listing and the read, or not ours to read
        fields = raw[raw.rindex(b")") + 2 :].split(maxsplit=3)  # state, ppid, pgrp, ...
        state = fields[0].decode()
        if int(fields[2]) == pgid and state not in ("Z", "X", "x"):
            found[int(entry.name)] = state
    return found


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is stopped or has exited (SIGSTOP reaches threads one by
    one), or `pid` is gone or cannot be read."""
    import os  # noqa: PLC0415 (see the section's note)

    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True  # gone
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                state = _parse_stat(int(tid), f.read().decode("utf-8", "replace")).state
        except (OSError, ValueError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X", "x"):
            return False
    return True


def uptime() -> float:
    """Now, on the clock of ProcessInfo.started: seconds since boot, time asleep included
    (CLOCK_BOOTTIME, the clock of /proc's start times)."""
    import time  # noqa: PLC0415 (see the section's note)

    return time.clock_gettime(time.CLOCK_BOOTTIME)


def start_resolution() -> float:
    """How finely start times are told apart: one clock tick (10 ms)."""
    import os  # noqa: PLC0415 (see the section's note)

    return 1 / os.sysconf("SC_CLK_TCK")


def pidfd_open(pid: int) -> int | None:
    """A pidfd for `pid` (Linux 5.3+): checks made while it is open describe the process it holds,
    and a signal sent through it can never reach another process that got the PID meanwhile.
    None where the kernel has none (the caller checks the start time again right before kill()).
    ProcessLookupError if `pid` is gone; other OSErrors as they come."""
    import errno  # noqa: PLC0415 (see the section's note)
    import os  # noqa: PLC0415

    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EINVAL):  # a kernel before 5.3, or a seccomp filter
            return None
        raise
    return fd


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """Send `sig` (0: only check it still runs and may be signalled) through a pidfd from
    pidfd_open(). ProcessLookupError once that process has exited; PermissionError if it is
    another user's."""
    import signal  # noqa: PLC0415 (see the section's note)

    signal.pidfd_send_signal(pidfd, sig)


# A child's exit can be waited for without reaping it (waitid WNOWAIT), and zombies told from
# running processes (/proc): a process group's leader is held as a zombie until its group is gone.
HOLD_ZOMBIE_LEADER = True


def wait_unreaped(pid: int) -> int | None:
    """Block until child `pid` exits, and return its status (negative: the signal that killed it)
    while leaving it unreaped (waitid WNOWAIT): as long as it is a zombie its PID -- which is its
    process group's id -- cannot be given to another process. None if it was reaped elsewhere."""
    import os  # noqa: PLC0415 (see the section's note)

    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # retried on EINTR (PEP 475)
    except ChildProcessError:
        return None
    if info is None:  # only with WNOHANG
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status  # CLD_KILLED, CLD_DUMPED


# ------------------------------------------------------------ pipes, files, sockets, filesystems
# (Imports stay inside these functions: most are needed only by one rarely used call, and the
# module is imported by every watchd run.)


def cloexec_pipe() -> tuple[int, int]:
    """A pipe whose two ends are close-on-exec from the moment they exist (pipe2): a process
    another thread starts meanwhile inherits neither."""
    import os  # noqa: PLC0415 (see the section's note)

    return os.pipe2(os.O_CLOEXEC)


def memfd(name: str) -> int | None:
    """A new anonymous file (memfd_create), close-on-exec; a child that inherits its descriptor
    opens it as /dev/fd/N. Raises OSError when one cannot be made now (out of descriptors, a
    seccomp filter)."""
    import os  # noqa: PLC0415 (see the section's note)

    return os.memfd_create(name, os.MFD_CLOEXEC)


def fd_path(fd: int) -> str | None:
    """The path this process's descriptor `fd` was opened by (/proc/self/fd/N), or None (a pipe,
    a socket, no /proc)."""
    import os  # noqa: PLC0415 (see the section's note)

    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return path if path.startswith("/") else None  # "pipe:[123]", "socket:[45]"


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem `path` (already resolved) is on, as /proc/self/mountinfo names
    it (ext4, nfs4, fuse.sshfs...): the innermost mount containing it. None if unknown."""

    try:
        with open("/proc/self/mountinfo") as f:
            text = f.read()
    except OSError:
        return None
    return mounts.innermost(path, mounts.parse_mountinfo(text))


# Connection steering for the early start: SO_REUSEPORT groups with a classic BPF program that
# picks the socket new connections go to. Linux only; without it, one socket is shared.
STEERING = True

_SO_ATTACH_REUSEPORT_CBPF = 51  # not in Python's socket module
_TCPI_UNACKED = 24  # offset in struct tcp_info: for a listener, the length of its accept queue
_SKF_NET_OFF = -0x100000  # classic BPF's offset of the network (IP) header, whatever skb->data is


def _assemble(program: list[tuple[int, int, str, str] | str]) -> bytes:
    """Classic BPF from (code, k, label if true, label if false) and "label:" lines; "" for
    a label is the next instruction."""
    import struct  # noqa: PLC0415 (see the section's note)

    where: dict[str, int] = {}
    n = 0
    for item in program:
        if isinstance(item, str):
            where[item.rstrip(":")] = n
        else:
            n += 1
    out = []
    n = 0
    for item in program:
        if isinstance(item, str):
            continue
        code, k, jt, jf = item
        n += 1
        out.append(
            struct.pack("=HBBI", code, where[jt] - n if jt else 0, where[jf] - n if jf else 0, k & 0xFFFFFFFF)
        )
    return b"".join(out)


def _steering_program(index: int, probe: tuple[str, int] | None, probe_index: int) -> bytes:
    """A classic BPF program for a SO_REUSEPORT group: the index of the socket a new connection
    goes to. `index` for all; with `probe` (a TCP source address and port), that one connection
    goes to `probe_index` (watchd's readiness probe of the next app, see watchd.readiness)."""
    import ipaddress  # noqa: PLC0415 (see the section's note)

    ld_b, ld_h, ld_w, ld_h_ind, ldx_msh = 0x30, 0x28, 0x20, 0x48, 0xB1  # ld [net+k] etc.
    rsh, jeq, ret = 0x74, 0x15, 0x06
    net = _SKF_NET_OFF
    if probe is None:
        return _assemble([(ret, index, "", "")])
    address = ipaddress.ip_address(probe[0])
    v4 = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else address
    program: list[tuple[int, int, str, str] | str] = [
        (ld_b, net, "", ""),  # the IP version: the high nibble of the header's first byte
        (rsh, 4, "", ""),
        (jeq, 6, "v6", "v4"),
        "v4:",
    ]
    if v4 is not None:  # the source address, then the port after the header's 4 * ihl bytes
        program += [
            (ld_w, net + 12, "", ""),
            (jeq, int(v4), "", "other"),
            (ldx_msh, net, "", ""),
            (ld_h_ind, net, "", ""),
            (jeq, probe[1], "probe", "other"),
        ]
    else:
        program.append((jeq, 4, "other", "other"))  # an IPv6 probe never comes as IPv4
    program.append("v6:")
    if v4 is None:  # four words of source address, then the port after the fixed 40 bytes
        packed = address.packed
        for i in range(4):
            program += [
                (ld_w, net + 8 + 4 * i, "", ""),
                (jeq, int.from_bytes(packed[4 * i : 4 * i + 4], "big"), "", "other"),
            ]
        program += [(ld_h, net + 40, "", ""), (jeq, probe[1], "probe", "other")]
    else:
        program.append((jeq, 6, "other", "other"))  # an IPv4 probe never comes as IPv6
    program += ["probe:", (ret, probe_index, "", ""), "other:", (ret, index, "", "")]
    return _assemble(program)


def steer(
    sock: socket.socket, index: int, *, probe: tuple[str, int] | None = None, probe_index: int = 0
) -> None:
    """Send every new connection of `sock`'s SO_REUSEPORT group to its `index`-th socket, except
    the one from `probe`'s TCP source address and port (if given), which goes to the
    `probe_index`-th. Raises OSError where the kernel cannot (no classic BPF for SO_REUSEPORT)."""
    import ctypes  # noqa: PLC0415 (see the section's note)
    import socket  # noqa: PLC0415
    import struct  # noqa: PLC0415

    code = _steering_program(index, probe, probe_index)
    program = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("@HP", len(code) // 8, ctypes.addressof(program))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_REUSEPORT_CBPF, fprog)


def accept_queue(sock: socket.socket) -> int:
    """How many connections wait in a TCP listener's accept queue (0 where it cannot tell)."""
    import socket  # noqa: PLC0415 (see the section's note)
    import struct  # noqa: PLC0415

    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except (OSError, AttributeError):
        return 0
    return int(struct.unpack_from("=I", info, _TCPI_UNACKED)[0]) if len(info) >= _TCPI_UNACKED + 4 else 0


def accepted_connections(pids: Iterable[int], *, port: int = 0, path: str = "") -> int | None:
    """How many connections accepted on a listener the processes `pids` hold: TCP ones
    established on local `port`, or Unix ones connected on socket file `path`. Outgoing
    connections (a database pool) have other local ports and do not count. None: cannot tell
    (never here: /proc and NETLINK_SOCK_DIAG answer)."""
    return _accepted(_socket_inodes(pids), port=port, path=path)


def _socket_inodes(pids: Iterable[int]) -> set[int]:
    """The inodes of the sockets these processes hold open."""
    import os  # noqa: PLC0415 (see the section's note)

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


def _accepted(inodes: set[int], *, port: int = 0, path: str = "") -> int:
    """How many of these sockets are connections accepted on a listener (see accepted_connections)."""
    from contextlib import suppress  # noqa: PLC0415 (see the section's note)

    if not inodes:
        return 0
    count = 0
    if path:
        with suppress(OSError), open("/proc/net/unix") as f:
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
        with suppress(OSError), open(table) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 10 or fields[3] != f"{_TCP_ESTABLISHED:02X}":
                    continue
                if int(fields[1].rsplit(":", 1)[1], 16) == port and int(fields[9]) in inodes:
                    count += 1
    return count


# ----------------------------------------------------------------------------- the control socket


def peer_uid(sock: socket.socket) -> int | None:
    """The effective UID of the process at the other end of a connected Unix socket, as the kernel
    recorded it at connect() (SO_PEERCRED: struct ucred {pid, uid, gid}); None if it cannot tell."""
    import socket as _socket  # noqa: PLC0415 (see the section's note)
    import struct  # noqa: PLC0415

    try:
        raw = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


# ----------------------------------------------------------------------------- metrics


def process_collector() -> object:
    """A Prometheus collector of watchd's own process metrics (process_cpu_seconds_total,
    process_resident_memory_bytes, process_open_fds, ...): prometheus_client's, which reads /proc."""
    from prometheus_client import ProcessCollector  # noqa: PLC0415 (only with metrics on)

    return ProcessCollector(registry=None)
