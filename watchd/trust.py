"""Whether a pidfile, and the process it names, may be trusted with a signal from watchd.

watchd may run as root, reloading an app that runs as another user. A pidfile that user (or
anyone) can write must not let them aim watchd's signal at a process of their choosing (the
CVE class of CVE-2018-16888 in systemd, CVE-2017-12847 in Nagios). The rules, those of systemd
and dpkg's start-stop-daemon, applied in order before any signal:

1. The pidfile is opened without following a symlink in its last component, without
   blocking, and the *open file* is checked: it must be a regular file.
2. A world-writable pidfile is refused, always.
3. A pidfile owned by root or by watchd's own user is trusted. One owned by another user U
   (or writable by a group other than root's or watchd's own) is trusted only for a target
   whose real and effective UID are both U.
4. A symlink on the way to it, in a directory owned by neither root nor watchd's user (/tmp),
   makes the symlink's owner the one the target must belong to (as in 3).
5. Optionally, the target must be in a given systemd unit's cgroup.
6. What cannot be read (EACCES on /proc; psutil's AccessDenied on macOS) is refused, never taken
   for alive. (The process's facts come from `watchd.platform`; `in_unit` only reads its text.)
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from watchd.errors import ActionError

MAX_PIDFILE = 4096
_PID = re.compile(rb"[+-]?\d+")
_PID_MAX = 2**31 - 1  # pid_t is a C int: os.kill raises OverflowError above it


@dataclass(frozen=True, slots=True)
class PidfileRead:
    pid: int
    mtime: float
    owner: int | None  # the user the target must run as (rules 3 and 4), None: any
    why: str  # for a refusal's log line: "pidfile owned by uid 65534"


def _trusted_uid(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _trusted_gid(gid: int) -> bool:
    return gid in (0, os.getegid())


def _untrusted_link(path: Path) -> tuple[int, str] | None:
    """The owner of the first symlink on the way to `path` that lives in a directory owned by
    neither root nor watchd's user (anyone who can write there could have made it), if any."""
    current = Path(path.anchor)
    for part in path.parts[1:]:
        nxt = current / part
        try:
            st = os.lstat(nxt)
        except OSError:
            return None  # not there: the open reports it
        if stat.S_ISLNK(st.st_mode):
            try:
                parent = os.stat(current)
            except OSError:
                return None
            if not _trusted_uid(parent.st_uid):
                return st.st_uid, f"symlink {nxt} in {current} (owned by uid {parent.st_uid})"
            target = os.readlink(nxt)
            nxt = Path(os.path.normpath(current / target))
            if len(nxt.parts) > 64:
                return None
        current = nxt
    return None


def read_pidfile(pidfile: Path) -> PidfileRead | None:
    """The PID in `pidfile` and who the target must belong to; None if it is missing or empty
    (the caller retries). ActionError says why one is refused."""
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ActionError(
                f"pidfile {pidfile} is a symlink: refused (point pidfile at the file the server writes)"
            ) from None
        if exc.errno == errno.EISDIR:
            raise ActionError(
                f"pidfile {pidfile} is a directory (point pidfile at the file the server writes)"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ActionError(f"cannot read pidfile {pidfile}: permission denied") from None
        raise ActionError(f"cannot read pidfile {pidfile}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ActionError(
                f"pidfile {pidfile} is a directory (point pidfile at the file the server writes)"
            )
        if not stat.S_ISREG(st.st_mode):
            raise ActionError(f"pidfile {pidfile} is not a regular file (a FIFO, device or socket): refused")
        if st.st_mode & stat.S_IWOTH:
            raise ActionError(
                f"pidfile {pidfile} is world-writable (mode {stat.S_IMODE(st.st_mode):04o}): refused, anyone "
                "could aim the signal (make it 0644)"
            )
        data = os.read(fd, MAX_PIDFILE)
    except OSError as exc:
        raise ActionError(f"cannot read pidfile {pidfile}: {exc.strerror}") from None
    finally:
        os.close(fd)
    pid = parse_pid(pidfile, data)
    if pid is None:
        return None
    owner: int | None = None
    why = ""
    if not _trusted_uid(st.st_uid):
        owner, why = st.st_uid, f"pidfile owned by uid {st.st_uid}"
    elif st.st_mode & stat.S_IWGRP and not _trusted_gid(st.st_gid):
        owner, why = st.st_uid, f"pidfile writable by group {st.st_gid}"
    link = _untrusted_link(pidfile)
    if link is not None and owner is None:
        owner, why = link[0], link[1]
    return PidfileRead(pid, st.st_mtime, owner, why)


def parse_pid(pidfile: Path, data: bytes) -> int | None:
    """The PID a pidfile's content names (None: empty); ActionError for anything unsafe."""
    text = data.strip()
    if not text:
        return None
    if not _PID.fullmatch(text):
        shown = text[:40].decode("utf-8", "backslashreplace")
        raise ActionError(f"pidfile {pidfile} does not hold a PID: {shown!r} (expected one decimal number)")
    pid = int(text)
    if pid == 0:
        raise ActionError(
            f"pidfile {pidfile} holds PID 0: refused (kill(0) would signal watchd's own process group)"
        )
    if pid == 1:
        raise ActionError(f"pidfile {pidfile} holds PID 1: refused (that is init, not a server)")
    if pid < 0:
        raise ActionError(
            f"pidfile {pidfile} holds PID {pid}: refused (a negative PID signals a whole process group; "
            "-1 every process)"
        )
    if pid > _PID_MAX:
        raise ActionError(f"pidfile {pidfile} holds {pid}: refused (larger than any PID)")
    return pid


def check_owner(read: PidfileRead, pid: int, uids: tuple[int, int] | None) -> None:
    """Rule 3/4: a pidfile others could write only names processes of the user who could."""
    check_user(read.owner, read.why, pid, uids)


def check_user(owner: int | None, why: str, pid: int, uids: tuple[int, int] | None) -> None:
    """The target must run as `owner` (real and effective UID), if one is set (`why`: the reason,
    "pidfile owned by uid 1000")."""
    if owner is None:
        return
    if uids is None:
        raise ActionError(f"PID {pid}: cannot read its owner: refused ({why})")
    ruid, euid = uids
    if ruid != owner or euid != owner:
        if why.startswith("process:"):  # (a process found by name was listed as that user's)
            raise ActionError(f"PID {pid} runs as uid {euid} now, but {why}: refused")
        raise ActionError(
            f"PID {pid} runs as uid {euid}, but the {why} may only name that user's processes: "
            "refused (make the pidfile root's or watchd's, run watchd as the app's user, or set unit:)"
        )


def in_unit(cgroup_text: str, unit: str) -> bool:
    """Whether a /proc/PID/cgroup text puts the process in systemd unit `unit` (any hierarchy)."""
    for line in cgroup_text.splitlines():
        path = line.split(":", 2)[-1]
        if unit in path.strip("/").split("/"):
            return True
    return False
