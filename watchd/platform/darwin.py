"""The macOS side of the platform seam (see watchd.platform): psutil for process facts (its macOS
backend runs on Macs in its own CI), portable POSIX calls for the rest. Other POSIX systems get
this side too."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from watchd import mounts
from watchd.platform.identity import ProcessInfo

if TYPE_CHECKING:
    import socket

NAME = "darwin"

# ----------------------------------------------------------------------------- process identity
# psutil: its macOS backend reads the kernel's process table (sysctl KERN_PROC, KERN_PROCARGS2)
# and runs on Macs in its own CI. It is imported when first asked, as in the section below. Its
# errors become the seam's: NoSuchProcess is gone (None), AccessDenied is PermissionError (unknown,
# never gone), ZombieProcess (a subclass of NoSuchProcess) is a zombie, which still has a PID.


def _denied(pid: int) -> PermissionError:
    import errno  # noqa: PLC0415 (see the section's note)

    return PermissionError(errno.EACCES, "permission denied", f"the process table's entry for PID {pid}")


# psutil's statuses as the one-letter states Linux's /proc (and ps) shows, so that a state reads
# the same whichever side produced it. macOS's own are idle (being created), running, sleeping,
# stopped and zombie.
_STATES = {
    "running": "R",
    "sleeping": "S",
    "disk-sleep": "D",
    "stopped": "T",
    "tracing-stop": "t",
    "zombie": "Z",
    "dead": "X",
    "wake-kill": "K",
    "waking": "W",
    "parked": "P",
    "idle": "I",
    "locked": "L",
    "waiting": "W",
    "suspended": "T",
}


def _state(status: str) -> str:
    return _STATES.get(status, "?")


def process_info(pid: int) -> ProcessInfo | None:
    """What the process table says of `pid` (psutil); None if it is gone. PermissionError where it
    may not be read: unknown, which callers must never take for gone."""
    import psutil  # noqa: PLC0415 (see the section's note)

    if pid <= 0:  # not a process (psutil's PID 0 is the kernel's own task)
        return None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()  # psutil answers "zombie" here rather than raise
            ppid = proc.ppid()
            created = proc.create_time()
            name = proc.name()
    except psutil.NoSuchProcess:  # ZombieProcess too: a zombie it could not describe has exited
        return None
    except psutil.AccessDenied:
        raise _denied(pid) from None
    # create_time is on the wall clock (seconds since the epoch): since boot, as uptime()
    return ProcessInfo(pid, ppid, name, _state(status), created - psutil.boot_time())


def cmdline(pid: int) -> list[str] | None:
    """The command line `pid` was started with (psutil; empty for a zombie); None if it is gone.
    PermissionError where it may not be read (on macOS: another user's process, unless root)."""
    import psutil  # noqa: PLC0415 (see the section's note)

    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.ZombieProcess:
        return []  # a zombie runs nothing: as /proc/PID/cmdline, empty
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        raise _denied(pid) from None


def uids(pid: int) -> tuple[int, int] | None:
    """(real, effective) UID of `pid` (psutil); None if it is gone. PermissionError where it may
    not be read."""
    import psutil  # noqa: PLC0415 (see the section's note)

    try:
        ids = psutil.Process(pid).uids()
    except psutil.ZombieProcess:
        return None  # its owner is no longer asked about: an exited process is refused anyway
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        raise _denied(pid) from None
    return ids.real, ids.effective


def cgroup(pid: int) -> str | None:
    """No cgroups here: "", in no systemd unit (`unit:` needs Linux)."""
    return ""


def children(pid: int) -> dict[int, float]:
    """The live (not zombie) children of `pid`, each with its start time (ProcessInfo.started),
    from psutil (which leaves out a "child" younger than its parent: a reused PID). Empty if
    `pid` is gone or cannot be read."""
    import psutil  # noqa: PLC0415 (see the section's note)

    try:
        kids = psutil.Process(pid).children()
    except psutil.Error:
        return {}
    boot = psutil.boot_time()
    out: dict[int, float] = {}
    for kid in kids:
        try:
            with kid.oneshot():
                if _state(kid.status()) in ("Z", "X") or kid.ppid() != pid:
                    continue
                out[kid.pid] = kid.create_time() - boot
        except psutil.Error:
            continue  # gone meanwhile, or not ours to read
    return out


def user_processes(uid: int) -> list[tuple[ProcessInfo, list[str]]]:
    """The live (not zombie) processes whose real and effective UID are both `uid`, each with its
    command line (psutil's process table). Processes that exit meanwhile or cannot be read are
    left out."""
    import psutil  # noqa: PLC0415 (see the section's note)

    boot = psutil.boot_time()
    found: list[tuple[ProcessInfo, list[str]]] = []
    for proc in psutil.process_iter():
        try:
            with proc.oneshot():
                ids = proc.uids()
                if (ids.real, ids.effective) != (uid, uid):
                    continue
                state = _state(proc.status())
                if state in ("Z", "X"):
                    continue
                info = ProcessInfo(proc.pid, proc.ppid(), proc.name(), state, proc.create_time() - boot)
                argv = list(proc.cmdline())
        except psutil.Error:
            continue  # gone meanwhile (a zombie too), or not ours to read
        if proc.pid > 0:
            found.append((info, argv))
    return found


def group_members(pgid: int) -> dict[int, str]:
    """The processes of group `pgid` that have not exited, with their state letters: every PID
    psutil lists, asked its group with getpgid (psutil does not report groups). Zombies do not
    count; processes that cannot be read are left out."""
    import os  # noqa: PLC0415 (see the section's note)

    import psutil  # noqa: PLC0415

    found: dict[int, str] = {}
    for pid in psutil.pids():
        try:
            if pid <= 0 or os.getpgid(pid) != pgid:
                continue
            info = process_info(pid)
        except OSError:
            continue  # gone meanwhile, or a zombie (macOS's getpgid answers ESRCH for those)
        if info is not None and not info.exited:
            found[pid] = info.state
    return found


def all_threads_stopped(pid: int) -> bool:
    """Whether `pid` is stopped or has exited, or is gone or cannot be read. The process's state
    (macOS stops a task as a whole; psutil on Linux reads the main thread's)."""
    try:
        info = process_info(pid)
    except OSError:
        return True
    return info is None or info.stopped or info.exited


def uptime() -> float:
    """Now, on the clock of ProcessInfo.started: seconds since boot. The kernel's clock from boot
    where there is one (Linux's CLOCK_BOOTTIME, where psutil's start times are clock ticks since
    boot); else the wall clock less the boot time, both on the clock macOS's start times are on."""
    import time  # noqa: PLC0415 (see the section's note)

    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is not None:
        return time.clock_gettime(boottime)
    import psutil  # noqa: PLC0415

    return time.time() - psutil.boot_time()


def start_resolution() -> float:
    """How finely start times are told apart: 10 ms, the coarser of psutil's (clock ticks on
    Linux; microseconds on macOS)."""
    return 0.01


def pidfd_open(pid: int) -> int | None:
    """No pidfds here: None, always (the caller checks the start time again right before kill())."""
    return None


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """No pidfds here (pidfd_open gives none): always raises OSError."""
    import errno  # noqa: PLC0415 (see the section's note)

    raise OSError(errno.ENOSYS, "no pidfds on this platform (Linux only)")


# No waiting without reaping (waitid WNOWAIT is Linux's here): a process group's leader is
# reaped when it exits, and its group is then told from zombies by group_members().
HOLD_ZOMBIE_LEADER = False


def wait_unreaped(pid: int) -> int | None:
    """Not here (see HOLD_ZOMBIE_LEADER): always raises OSError; the caller reaps the child."""
    import errno  # noqa: PLC0415 (see the section's note)

    raise OSError(errno.ENOSYS, "no waiting without reaping on this platform (Linux only)")


# ------------------------------------------------------------ pipes, files, sockets, filesystems
# (Imports stay inside these functions: most are needed only by one rarely used call, and the
# module is imported by every watchd run.)


def cloexec_pipe() -> tuple[int, int]:
    """A pipe whose two ends are close-on-exec. There is no pipe2 here: the flag is set right
    after pipe() (os.pipe does, and so does this, to say so), so a process another thread
    starts in between could inherit them; watchd's own children close them (close_fds)."""
    import os  # noqa: PLC0415 (see the section's note)

    r, w = os.pipe()
    for fd in (r, w):
        os.set_inheritable(fd, False)
    return r, w


def memfd(name: str) -> int | None:
    """No anonymous files here (memfd_create is Linux's): None, and the caller writes a private
    temporary file instead."""
    return None


def fd_path(fd: int) -> str | None:
    """The path this process's descriptor `fd` was opened by (fcntl F_GETPATH), or None (a pipe,
    a socket, or a system without F_GETPATH)."""
    import fcntl  # noqa: PLC0415 (see the section's note)
    import os  # noqa: PLC0415

    getpath = getattr(fcntl, "F_GETPATH", None)  # macOS's; the other BSDs have none
    if getpath is None:
        return None
    try:
        raw = fcntl.fcntl(fd, getpath, bytes(1024))  # MAXPATHLEN bytes, NUL-terminated
    except OSError:
        return None
    path = os.fsdecode(raw.split(b"\0", 1)[0])
    return path if path.startswith("/") else None


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem `path` (already resolved) is on, as statfs's f_fstypename
    names it (apfs, nfs, smbfs, afpfs, webdav, macfuse...), read with psutil's partitions:
    the innermost mount containing it. None if unknown."""
    import psutil  # noqa: PLC0415 (see the section's note)

    try:
        partitions = psutil.disk_partitions(all=True)
    except (OSError, psutil.Error):
        return None
    return mounts.innermost(path, [(p.mountpoint, p.fstype) for p in partitions])


# No connection steering here: SO_REUSEPORT has no BPF program to pick a socket with, so an app
# and its successor cannot be given separate sockets; one socket is shared.
STEERING = False


def steer(
    sock: socket.socket, index: int, *, probe: tuple[str, int] | None = None, probe_index: int = 0
) -> None:
    """Connections cannot be steered here (see STEERING): always raises OSError."""
    import errno  # noqa: PLC0415 (see the section's note)

    raise OSError(errno.EOPNOTSUPP, "no connection steering on this platform (Linux only)")


def accept_queue(sock: socket.socket) -> int:
    """How many connections wait in a listener's accept queue: 0, it cannot tell here (only
    asked with steering, which this side has not)."""
    return 0


def accepted_connections(pids: Iterable[int], *, port: int = 0, path: str = "") -> int | None:
    """How many TCP connections established on local `port` the processes `pids` hold (psutil,
    which needs no root for one's own processes); None where it cannot tell: a process it may
    not inspect, or a Unix socket (macOS gives accepted ones the listener's path and no state,
    so they cannot be told from the listening socket every app holds)."""
    if path or not port:
        return None
    import psutil  # noqa: PLC0415 (see the section's note)

    count = 0
    for pid in pids:
        try:
            held = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue  # gone: it holds nothing
        except (psutil.Error, OSError):
            return None
        count += sum(
            1 for c in held if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )
    return count


# ----------------------------------------------------------------------------- the control socket

_SOL_LOCAL = 0  # macOS's sys/un.h
_LOCAL_PEERCRED = 0x001  # struct xucred of the peer, as recorded at connect()
_XUCRED_VERSION = 0
_XUCRED = "IIh2x16I"  # cr_version, cr_uid, cr_ngroups (short, padded), cr_groups[NGROUPS=16]


def peer_uid(sock: socket.socket) -> int | None:
    """The effective UID of the process at the other end of a connected Unix socket
    (LOCAL_PEERCRED: struct xucred, what getpeereid(3) reads); None if it cannot tell."""
    import struct  # noqa: PLC0415 (see the section's note)

    try:
        raw = sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERCRED, struct.calcsize(_XUCRED))
    except OSError:
        return None
    if len(raw) < struct.calcsize("II"):
        return None
    version, uid = struct.unpack_from("II", raw)
    return int(uid) if version == _XUCRED_VERSION else None


# ----------------------------------------------------------------------------- metrics


def process_collector() -> object:
    """A Prometheus collector of watchd's own process metrics under the standard names
    (process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
    process_start_time_seconds, process_open_fds): prometheus_client's own reads /proc, which a Mac
    has not, so these come from psutil."""
    import psutil  # noqa: PLC0415 (see the section's note)
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

    class _PsutilProcess:
        def __init__(self) -> None:
            self._me = psutil.Process()

        def collect(self) -> list[CounterMetricFamily | GaugeMetricFamily]:
            me = self._me
            with me.oneshot():
                cpu = me.cpu_times()
                mem = me.memory_info()
                started = me.create_time()
                fds = me.num_fds()
            return [
                CounterMetricFamily(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.",
                    cpu.user + cpu.system,
                ),
                GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.", mem.rss),
                GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.", mem.vms),
                GaugeMetricFamily(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    started,
                ),
                GaugeMetricFamily("process_open_fds", "Number of open file descriptors.", fds),
            ]

    return _PsutilProcess()
