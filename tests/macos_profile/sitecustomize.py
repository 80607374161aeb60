"""The macOS profile: this interpreter plays a Mac, so that watchd's Darwin paths run here (tests only).

`tests/macos_lane.sh` puts this directory first on PYTHONPATH, so `site` imports this module at
start-up in pytest (the in-process tests) and in every Python process the tests start -- watchd
itself, the apps it runs and the stand-in servers -- unless it runs with -S, -I or -E. (watchd's
own import hook, watchd/hook/sitecustomize.py, imports the sitecustomize it shadows: this one.)
watchd is not changed and never reads a test variable: the interpreter is.

1. `sys.platform` is "darwin" (watchd.platform selects its Darwin side) and `os.uname()` says
   Darwin (watchd.inotify.available() is False there, as on a Mac, so the Watcher uses watchdog's
   observer instead of watchd's inotify tree). fcntl has macOS's F_GETPATH (answered from the
   descriptor's /proc/self/fd link: the path it was opened by, as a Mac's kernel answers).
2. What macOS's Python does not have is gone: `os.pipe2`, `os.pidfd_open`, `os.waitid`,
   `os.memfd_create`, `signal.pidfd_send_signal` (and their constants). Calling one is an
   AttributeError, as on a Mac.
3. An audit hook (`sys.addaudithook`) refuses what exists here but not there: opening or listing
   /proc or /sys, and loading inotify, pidfd, memfd, prctl or pipe2 from libc with ctypes. The
   refusal is `LinuxOnlyCall`, a BaseException, so that no `except Exception` (or `except OSError`)
   in watchd turns it into a quiet fallback: the test fails, naming the caller's file and line.
   Allowed: psutil, whose Linux backend reads /proc here where its macOS backend asks sysctl on a
   Mac (same answers, through the same API), and watchdog's inotify observer, which plays FSEvents
   (see 4). With $MACOS_PROFILE_REFUSALS set, every refusal is also appended to that file (one line
   each, from every process), so the lane can list them even where a thread died quietly.
4. The observer: tests/macos_lane.sh also puts the live FSEvents double on PYTHONPATH
   (tests/helpers/fsevents_double, fed from this machine's inotify), so watchd's native_observer
   finds `_watchdog_fsevents` and runs watchdog's real FSEventsEmitter, as on a Mac. Without it
   (the profile alone), watchdog's own choice stays Linux's inotify observer: watchdog.utils.platform
   is imported before sys.platform changes (below).

Import order is the design. What selects its platform once, at import, and must stay Linux
because it talks to this kernel is imported BEFORE sys.platform changes:
- psutil: psutil/_common.py sets LINUX/MACOS from sys.platform and psutil/__init__.py imports
  _pslinux or _psosx accordingly; on "darwin" it would import the C module _psutil_osx, which does
  not exist here. Imported first, it keeps its Linux backend for the whole process.
- watchdog.utils.platform: computes __platform__ once; on "darwin" watchdog.observers would look
  for FSEvents, then kqueue (neither here) and fall back to polling with a warning (an error under
  pytest's filterwarnings).
The standard library mostly decides per call, and its Darwin branches work here: subprocess uses
posix_spawn (as it does with glibc), shutil copies without sendfile, multiprocessing defaults to
spawn, ctypes.util.find_library finds nothing (dyld), which is what a Mac says of "libc.so.6".
Three need help: sysconfig's build variables are read before the change (see below);
urllib.request imports the Mac-only `_scproxy` on "darwin" (a stand-in sits next to this file,
answering as a Mac with no system proxy does); site and sysconfig read `sys._framework` (set to
"", as on a non-framework macOS build).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import struct
import sys
import sysconfig
from types import FrameType
from typing import Any

ACTIVE = True  # what the tests' conftest looks for: this interpreter plays a Mac


class LinuxOnlyCall(BaseException):
    """A call macOS does not have, refused by the macOS profile. A BaseException, so that no
    `except Exception` in the code under test can turn it into a quiet fallback."""


# -------------------------------------------------------------------- 1. stays Linux: imported first
with contextlib.suppress(ImportError):  # an interpreter without them (not the venv's) needs neither
    import psutil  # noqa: F401 (imported for its side effect: its Linux backend, chosen now)
with contextlib.suppress(ImportError):
    import watchdog.utils.platform  # noqa: F401 (as psutil: its platform, computed now)
# sysconfig names the module of the build's variables after sys.platform (_sysconfigdata__linux_*):
# read once now, they stay cached (this is a Linux build; 1.5 ms)
sysconfig.get_config_vars()
# ctypes.util's Darwin branch imports ctypes.macholib, which Debian's python3.11 leaves out (a
# venv whose home another user cannot read -- watchd run as nobody -- falls back to /usr/lib's):
# there, ctypes.util keeps its Linux branch
if not os.path.isdir(os.path.join(os.path.dirname(os.__file__), "ctypes", "macholib")):
    import ctypes.util  # noqa: F401

# ------------------------------------------------------------------------------- 2. plays a Mac
_real_uname = os.uname


def _darwin_uname() -> os.uname_result:
    """What a Mac's uname says (macOS 14's kernel), with this machine's node name and machine."""
    real = _real_uname()
    return os.uname_result(
        ("Darwin", real.nodename, "23.6.0", "Darwin Kernel Version 23.6.0 (macOS profile)", real.machine)
    )


_real_fcntl = fcntl.fcntl
_F_GETPATH = 50  # macOS's sys/fcntl.h


def _fcntl_with_getpath(fd: Any, cmd: int, arg: Any = 0, /) -> Any:
    """fcntl.fcntl with macOS's F_GETPATH: the path `fd` was opened by, in a MAXPATHLEN buffer
    (what Linux's /proc/self/fd link holds; "pipe:[123]" for a pipe, which fd_path refuses)."""
    if cmd != _F_GETPATH:
        return _real_fcntl(fd, cmd, arg)
    number = fd if isinstance(fd, int) else fd.fileno()
    try:
        target = os.fsencode(os.readlink(f"/proc/self/fd/{number}"))
    except FileNotFoundError:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF)) from None
    size = len(arg) if isinstance(arg, bytes) else 1024
    return (target + b"\0" * size)[:size]


sys.platform = "darwin"
os.uname = _darwin_uname
sys._framework = ""  # type: ignore[attr-defined]  # (every macOS build has it; "" unless a framework build)
fcntl.F_GETPATH = _F_GETPATH  # type: ignore[attr-defined]  # (macOS's; watchd's own-log check needs it)
fcntl.fcntl = _fcntl_with_getpath

_SO_PEERCRED = socket.SO_PEERCRED  # Linux's: a Mac's socket module has no such name (removed below)
_SOL_LOCAL, _LOCAL_PEERCRED = 0, 0x001  # macOS's sys/un.h
_XUCRED = "IIh2x16I"  # struct xucred: cr_version, cr_uid, cr_ngroups, cr_groups[16]
_real_getsockopt = socket.socket.getsockopt


def _getsockopt_with_peercred(
    self: socket.socket, level: int, optname: int, buflen: int | None = None
) -> Any:
    """socket.getsockopt with macOS's LOCAL_PEERCRED on a Unix socket: the peer's struct xucred,
    answered from Linux's SO_PEERCRED (as a Mac's kernel answers getpeereid)."""
    if self.family != socket.AF_UNIX or (level, optname) != (_SOL_LOCAL, _LOCAL_PEERCRED):
        return (
            _real_getsockopt(self, level, optname)
            if buflen is None
            else _real_getsockopt(self, level, optname, buflen)
        )
    raw = _real_getsockopt(self, socket.SOL_SOCKET, _SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, gid = struct.unpack("3i", raw)
    return struct.pack(_XUCRED, 0, uid, 1, gid, *[0] * 15)


socket.socket.getsockopt = _getsockopt_with_peercred  # type: ignore[method-assign]

# -------------------------------------------------------------------- 3. what macOS's Python lacks
_GONE = {
    os: (
        "pipe2",
        "pidfd_open",
        "PIDFD_NONBLOCK",
        "P_PIDFD",
        "waitid",  # posixmodule.c leaves it out on Apple platforms
        "waitid_result",
        "memfd_create",
        *(name for name in dir(os) if name.startswith("MFD_")),
    ),
    signal: ("pidfd_send_signal",),
    socket: ("SO_PEERCRED", "SO_PEERSEC", "SO_PASSCRED"),
}
for _module, _names in _GONE.items():
    # the C module too (posix, _signal, _socket): `from posix import pipe2` must fail as well
    _c_module = {os: "posix", signal: "_signal", socket: "_socket"}[_module]
    for _target in (_module, sys.modules.get(_c_module)):
        for _name in _names:
            if _target is not None and hasattr(_target, _name):
                delattr(_target, _name)

# --------------------------------------------------------------------------------- 4. the guards
REFUSED_TREES = ("/proc", "/sys")  # Linux's pseudo-filesystems: macOS has neither
REFUSED_SYMBOLS = ("inotify_", "fanotify_", "pidfd_", "memfd_create", "prctl", "pipe2")
# Callers that may: psutil (its Linux backend is this lane's sysctl) and watchdog's inotify
# observer (this lane's FSEvents, until the FSEvents double serves it; see the docstring).
# (Module names; a name also covers its submodules and inotify's inotify_c, inotify_buffer.)
ALLOWED = {
    "open": ("psutil",),
    "os.listdir": ("psutil",),
    "os.scandir": ("psutil",),
    "ctypes.dlsym": ("psutil", "watchdog.observers.inotify"),
}
# Callers for which /proc simply is not there, as on a Mac (FileNotFoundError, not a refusal):
# libraries that probe for it and do without, as prometheus_client's ProcessCollector does at its
# import (watchd's Darwin side gives the process metrics from psutil instead).
ABSENT = {"open": ("prometheus_client",)}
_STDLIB = os.path.dirname(os.__file__) + os.sep
_SITE_PACKAGES = f"{os.sep}site-packages{os.sep}"
_HERE = os.path.abspath(__file__)
_REFUSALS = os.environ.get("MACOS_PROFILE_REFUSALS", "")


def _is_linux_path(target: object) -> bool:
    if isinstance(target, int):  # a descriptor: what it was opened from was checked then
        return False
    try:
        path = os.fsdecode(target)  # type: ignore[arg-type]  # (anything else: not a path)
    except TypeError:
        return False
    if not path.startswith("/"):
        try:
            path = os.path.join(os.getcwd(), path)
        except OSError:  # no current directory (removed): then no relative path reaches /proc either
            return False
    path = os.path.normpath(path)
    return any(path == tree or path.startswith(tree + "/") for tree in REFUSED_TREES)


def _callers() -> list[tuple[str, str, int]]:
    """(module, file, line) of each frame from the innermost outwards, without the standard
    library's (open() inside pathlib, ctypes' __getattr__) and this file's."""
    out = []
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        stdlib = name.startswith(_STDLIB) and _SITE_PACKAGES not in name
        if not stdlib and not name.startswith("<frozen") and name != _HERE:
            out.append((str(frame.f_globals.get("__name__", "")), name, frame.f_lineno))
        frame = frame.f_back
    return out


def _short(path: str) -> str:
    try:
        return os.path.relpath(path)
    except (OSError, ValueError):  # no current directory
        return path


def _refuse(event: str, what: str) -> None:
    callers = _callers()
    if callers:  # the innermost caller outside the standard library decides
        module = callers[0][0]
        if any(module == a or module.startswith((a + ".", a + "_")) for a in ALLOWED[event]):
            return
        if any(module == a or module.startswith(a + ".") for a in ABSENT.get(event, ())):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), what.strip("'"))
    where = " <- ".join(f"{_short(f)}:{n}" for _, f, n in callers[:4]) or "?"
    message = f"macOS profile: {event} {what}: Linux-only (a Mac has no such thing), called from {where}"
    if _REFUSALS:
        with contextlib.suppress(OSError):
            fd = os.open(_REFUSALS, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, f"{os.getpid()} {message}\n".encode("utf-8", "backslashreplace"))
            finally:
                os.close(fd)
    raise LinuxOnlyCall(message)


def _audit(event: str, args: tuple[object, ...]) -> None:
    # Called for every audited event in the process: only string compares until one matches.
    if event in ("open", "os.listdir", "os.scandir"):
        if args and args[0] is not None and _is_linux_path(args[0]):
            _refuse(event, repr(os.fsdecode(args[0])))  # type: ignore[arg-type]  # (a path: checked above)
    elif event == "ctypes.dlsym":
        name = args[1] if len(args) > 1 else None
        if isinstance(name, str) and name.startswith(REFUSED_SYMBOLS):
            _refuse(event, repr(name))


sys.addaudithook(_audit)


# ------------------------------------------------------------------- 5. the sitecustomize we hide
def _load_hidden_sitecustomize() -> None:
    """Import the sitecustomize further down the path, if any (a test's own, a user's): first on
    PYTHONPATH, this one hides it. As watchd's import hook does (watchd/hook/sitecustomize.py)."""
    here = os.path.dirname(_HERE)
    saved_path = list(sys.path)
    ours = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        try:
            import sitecustomize  # noqa: F401, PLC0415 (the hidden one)
        except ImportError as exc:
            if exc.name != "sitecustomize":
                raise
    finally:
        sys.path[:] = saved_path
        if ours is not None:
            sys.modules["sitecustomize"] = ours


_load_hidden_sitecustomize()
