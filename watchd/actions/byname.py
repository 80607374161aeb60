"""`process: NAME`: find the one process to signal by its name, where no pidfile says its PID.

The Kubernetes case: a sidecar in the app's pod with `shareProcessNamespace: true` sees the app's
processes, but the app writes no pidfile. At every trigger, the processes of one user (watchd's,
or as root `process_user`'s: both real and effective UID) are listed through the platform seam
(/proc on Linux, psutil on macOS), and those NAME names are kept:

- a one-word NAME is the process's name: the kernel's (Linux's comm, which keeps 15 characters),
  its program's file name (`/usr/local/bin/gunicorn` is gunicorn), or, for a Python interpreter,
  the script or `-m` module it runs (`python3 /venv/bin/gunicorn`, `python -m http.server`);
- more words are the start of its command line from the program on (`gunicorn -c api.py` is
  `/venv/bin/gunicorn -c api.py app:app`, not `gunicorn -c web.py ...`), the program compared by
  its file name as above. A shell running `sh -c "gunicorn ..."` is named sh, not gunicorn.

A process whose parent is named NAME too is one of that parent's workers (gunicorn's, uWSGI's,
nginx's): the master is the match. watchd itself never is. Several matches are refused with
their list, none is refused: a signal goes to exactly one process, and what is found is then
checked like a pidfile's target (see `watchd.actions.pidfile`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from watchd import platform
from watchd.errors import ActionError

_INTERPRETER = re.compile(r"^(python|pypy)[\d.]*$")
_COMM_MAX = 15  # Linux keeps this many characters of a program's name (TASK_COMM_LEN - 1)


@dataclass(frozen=True, slots=True)
class Found:
    """A process NAME names, as listed."""

    pid: int
    ppid: int
    started: float  # ProcessInfo.started: with the PID, its identity
    comm: str
    cmdline: str


@dataclass(frozen=True, slots=True)
class User:
    """Whose processes are searched."""

    uid: int
    whose: str  # for messages: "uid 1000's", "www-data's"


def searched_user(process_user: int | None) -> User:
    """The user whose processes `process: NAME` looks among: watchd's own, or as root
    `process_user`. Another user's as a non-root watchd is refused (it could not signal them)."""
    euid = os.geteuid()
    uid = euid if process_user is None else process_user
    if euid not in (uid, 0):
        raise ActionError(
            f"process_user is uid {uid}, but watchd runs as uid {euid} and may only signal its own "
            "user's processes: refused (run watchd as root, or as that user)"
        )
    import pwd  # noqa: PLC0415 (a name for messages)

    try:
        shown = f"{pwd.getpwuid(uid).pw_name}'s"
    except KeyError:
        shown = f"uid {uid}'s"
    return User(uid, shown)


def _program(argv: list[str]) -> int | None:
    """Where the program is in `argv`: 0, or past a Python interpreter (its script, or the module
    after -m); None if the interpreter runs neither (python -c ...)."""
    if not argv:
        return None
    if _INTERPRETER.match(os.path.basename(argv[0])) and len(argv) > 1:
        if argv[1] == "-m":
            return 2 if len(argv) > 2 else None
        return 1 if not argv[1].startswith("-") else None
    return 0


def _same_program(word: str, arg: str) -> bool:
    return arg == word or ("/" not in word and os.path.basename(arg) == word)


def matches(name: str, comm: str, argv: list[str]) -> bool:
    """Whether `name` (words separated by single spaces) names the process of this kernel name
    and command line; see the module's docstring."""
    words = name.split(" ")
    if len(words) == 1 and (comm == name or (len(comm) == _COMM_MAX and name.startswith(comm))):
        return True
    starts = {0}
    at = _program(argv)
    if at is not None:
        starts.add(at)
    for i in starts:
        rest = argv[i : i + len(words)]
        if len(rest) == len(words) and _same_program(words[0], rest[0]) and rest[1:] == words[1:]:
            return True
    return False


def find(name: str, uid: int) -> list[Found]:
    """The processes of `uid` that `name` names, leaving out watchd and the workers of a match
    (a process whose parent is a match); sorted by PID."""
    me = os.getpid()
    hits = {
        info.pid: Found(info.pid, info.ppid, info.started, info.name, " ".join(argv))
        for info, argv in platform.current.user_processes(uid)
        if info.pid != me and matches(name, info.name, argv)
    }
    return sorted((f for f in hits.values() if f.ppid not in hits), key=lambda f: f.pid)
