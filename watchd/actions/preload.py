"""Warm restarts of a Python app: a fork server that has imported its stable modules (`preload: auto`).

Starting a Python app again costs mostly imports that did not change: Flask, Django, the standard
library. watchd knows what the app imported (the import hook, `watchd.actions.imports`) and which
files may change (the watch): the **stable** files are those the watch does not count and that
are not the app's own (below its cwd, unless in site-packages). After the app's first start, a
fork server (watchd/hook/_watchd_forkserver.py, run by the app's own interpreter with its
options, cwd and environment) imports them and waits; each restart forks it, and the fork runs
the app's entry, importing only what is not preloaded. The list is kept per app (watch, command,
cwd) in the user's cache directory, so a new watchd's first restart is warm too.

Never stale: the server lists every module file it holds; each warm start first compares their
stat (mtime, size, inode) with what they were once the server was ready -- a file changed since
(a package upgraded, an edit in site-packages) retires the server, that start is cold, and a new
server preloads the files as they are now. Never unsafe: a preload import that fails, or that
brings in the app's own code, is left out and a new server starts without it; a thread running
after the preload, an interpreter or entry watchd cannot tell from the command, an app that is
not Python: every start is cold, and watchd says why once (`-v`: per start, "warm (fork, N
modules preloaded) in X ms" or "cold: why").

Who reaps: the server forked the app, so only it can wait for it. It reports the exit and, where
it can wait without reaping (Linux), keeps the app a zombie until watchd has seen its group gone
and says "reap" (`ForkedLeader.collect`), the guarantee `Child` gives the apps watchd starts
itself. A server that still has an app is retired, not ended: it ends once its apps are reaped.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from watchd import platform
from watchd.hook._watchd_forkserver import Channel

if TYPE_CHECKING:
    import subprocess

log = logging.getLogger(__name__)

SERVER = str(Path(__file__).resolve().parent.parent / "hook" / "_watchd_forkserver.py")
FORK_TIMEOUT = 5.0  # the server answers a fork within milliseconds; a stuck one is given up on
QUIET_BEFORE_START = 0.5  # a server starts once the app's import reports have been quiet this long
MAX_TRIES = 4  # servers started for one list (each leaves out what failed in the one before)
LOST = 255  # the exit status of an app whose fork server died before it (unknown)
_CACHE_VERSION = 1

_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")
_SHELL_SPECIAL = set(";&|<>()$`*?[]{}~\n\\")
# options of the app's interpreter the server takes as they are (it runs with them too)
_FLAGS = frozenset({"-u", "-B", "-O", "-OO", "-b", "-bb", "-d", "-q", "-s", "-v", "-R"})
_WITH_VALUE = frozenset({"-W", "-X"})
# not for the server: what it would carry into every app (each start has its own)
_PER_START = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WERKZEUG_SERVER_FD", "WATCHD_IMPORTS_FD")


class NotPython(Exception):
    """The app is not run by a Python interpreter (said only with -v: a cold start is all it has)."""


class Unsupported(Exception):
    """A Python app whose start the fork server cannot reproduce: why."""


# ----------------------------------------------------------------------------- the app's entry


@dataclass(frozen=True, slots=True)
class Entry:
    """How a new interpreter would start the app: `python [options] (script | -m module) args`."""

    interpreter: str  # the path exec finds
    options: tuple[str, ...]
    kind: str  # "script" (also a console script's file) or "module"
    target: str  # the script as the app's sys.argv[0] has it, or the module's name
    args: tuple[str, ...]
    path0: str  # sys.path[0]: the script's directory (symlinks resolved), or the cwd for -m

    @property
    def argv(self) -> list[str]:
        """sys.argv as the entry starts (runpy replaces "-m" by the module's file)."""
        return [self.target if self.kind == "script" else "-m", *self.args]

    @property
    def orig_argv(self) -> list[str]:
        entry = [self.target] if self.kind == "script" else ["-m", self.target]
        return [self.interpreter, *self.options, *entry, *self.args]


def _which(program: str, cwd: Path, env: Mapping[str, str]) -> str | None:
    if os.sep in program:
        path = os.path.join(cwd, program)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def _options(words: list[str]) -> tuple[list[str], int]:
    """The interpreter's options at the start of `words`, and where they end."""
    kept: list[str] = []
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        word = words[i]
        if word in ("-m", "-c") or word.startswith(("-m", "-c")):
            break
        if word in _FLAGS:
            kept.append(word)
        elif word in _WITH_VALUE:
            if i + 1 >= len(words):
                raise Unsupported(f"python {word} without its value")
            kept += [word, words[i + 1]]
            i += 1
        elif word[:2] in _WITH_VALUE:
            kept.append(word)
        elif word in ("-E", "-I", "-S", "-P"):
            raise Unsupported(
                f"python {word}: the import hook and the fork server need site and the environment"
            )
        else:
            raise Unsupported(f"python option {word}")
        i += 1
    return kept, i


def python_entry(command: str | tuple[str, ...], cwd: Path, env: Mapping[str, str]) -> Entry:
    """The app's entry, from its command. NotPython, or Unsupported with why."""
    if isinstance(command, str):
        if any(c in _SHELL_SPECIAL for c in command):
            raise Unsupported("a shell command line (run the program itself, as a list, for warm restarts)")
        try:
            words = shlex.split(command)
        except ValueError:
            raise Unsupported("a shell command line shlex cannot read") from None
        if words and "=" in words[0]:
            raise Unsupported("a shell command line with variable assignments")
    else:
        words = list(command)
    if not words:
        raise NotPython("no program")
    program = _which(words[0], cwd, env)
    if program is None:
        raise NotPython(f"{words[0]} not found")
    if _PYTHON.fullmatch(os.path.basename(words[0])):
        options, i = _options(words[1:])
        rest = words[1 + i :]
        return _entry(program, options, rest, cwd)
    # a script: its #! line must name a Python interpreter (pip's console scripts, manage.py)
    try:
        with open(program, "rb") as f:
            first = f.readline(512)
    except OSError as exc:
        raise NotPython(f"{program}: {exc.strerror}") from None
    if not first.startswith(b"#!"):
        raise NotPython(f"{words[0]} is not a script with a #! line")
    shebang = os.fsdecode(first[2:]).split()
    if shebang and os.path.basename(shebang[0]) == "env":
        shebang = [w for w in shebang[1:] if not w.startswith("-")]
        found = shutil.which(shebang[0], path=env.get("PATH", os.defpath)) if shebang else None
        if found is None:
            raise NotPython(f"{words[0]}'s #! interpreter is not found")
        shebang[0] = found
    if not shebang or not _PYTHON.fullmatch(os.path.basename(shebang[0])):
        raise NotPython(f"{words[0]} is run by {shebang[0] if shebang else 'nothing'}")
    options, i = _options(shebang[1:])
    if i != len(shebang) - 1:
        raise Unsupported(f"{words[0]}'s #! line: {' '.join(shebang)}")
    # the kernel passes the path it ran: as written with a slash, else as found on PATH
    script = words[0] if os.sep in words[0] else program
    return _entry(shebang[0], options, [script, *words[1:]], cwd)


def _entry(interpreter: str, options: list[str], rest: list[str], cwd: Path) -> Entry:
    if not rest:
        raise Unsupported("an interactive interpreter")
    first = rest[0]
    if first == "-m" or first.startswith("-m"):
        module = first[2:] or (rest[1] if len(rest) > 1 else "")
        if not module:
            raise Unsupported("python -m without a module")
        args = rest[2:] if first == "-m" else rest[1:]
        return Entry(interpreter, tuple(options), "module", module, tuple(args), str(cwd.resolve()))
    if first.startswith("-c"):
        raise Unsupported("python -c (code on the command line)")
    if first == "-":
        raise Unsupported("a script read from stdin")
    script = os.path.join(cwd, first)
    if not os.path.isfile(script):
        raise Unsupported(f"{first} is not a file")
    path0 = os.path.dirname(os.path.realpath(script))
    return Entry(interpreter, tuple(options), "script", first, tuple(rest[1:]), path0)


# ----------------------------------------------------------------------------- the cache


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """watchd's directory in the user's cache: $XDG_CACHE_HOME, else ~/Library/Caches on macOS and
    ~/.cache elsewhere."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        base = Path(xdg)
    elif platform.current.NAME == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path.home() / ".cache"
    return base / "watchd"


def cache_file(
    name: str, command: str | tuple[str, ...], cwd: Path, env: Mapping[str, str] | None = None
) -> Path:
    """Where the stable-module list of this app (watch, command, cwd) is kept."""
    key = json.dumps([name, command if isinstance(command, str) else list(command), str(cwd)])
    return cache_dir(env) / "preload" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def read_cache(path: Path) -> tuple[list[str], dict[str, str]]:
    """The files, and those left out with why; nothing if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], {}
    if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION:
        return [], {}
    files = [f for f in data.get("files", []) if isinstance(f, str)]
    left = data.get("left_out", {})
    left_out = (
        {k: v for k, v in left.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(left, dict)
        else {}
    )
    return files, left_out


def write_cache(path: Path, files: list[str], left_out: dict[str, str]) -> None:
    """Best effort: a cache that cannot be written costs the next watchd its first warm restart."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(
            json.dumps({"version": _CACHE_VERSION, "files": files, "left_out": left_out}), encoding="utf-8"
        )
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("could not write the preload cache %s: %s", path, exc.strerror or exc)


# ----------------------------------------------------------------------------- the server


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass
class Ready:
    """What a server said once it had preloaded."""

    pid: int
    modules: int
    files: list[tuple[str, str, str | None]]  # (module, file, the preloaded file that brought it in)
    failed: dict[str, str]  # preloaded file -> why its import failed
    started_ns: int
    holds_zombies: bool


class ForkedLeader:
    """An app a fork server forked, as `Child` waits for it and reaps it."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.holds_zombie = server.holds_zombies
        self._done = threading.Event()
        self._code = LOST
        self.lost = False

    def wait(self) -> int:
        self._done.wait()
        return self._code

    def exited(self, code: int) -> None:
        self._code = code
        self._done.set()

    def server_gone(self) -> None:
        """Its server died first: the app is someone else's child now; wait for it to be gone."""
        self.lost = True
        self.holds_zombie = False

        def poll() -> None:
            while platform.current.process_info(self.pid) is not None and not self._done.is_set():
                info = platform.current.process_info(self.pid)
                if info is None or info.state in ("Z", "X"):
                    break
                time.sleep(0.05)
            self._done.set()

        threading.Thread(target=poll, name=f"watchd-orphan-{self.pid}", daemon=True).start()

    def collect(self) -> None:
        self.server.collect(self.pid)


class ForkServer:
    """One fork server process and watchd's end of its socket (a reader thread takes its news)."""

    def __init__(
        self,
        name: str,
        entry: Entry,
        env: dict[str, str],
        cwd: Path,
        files: list[str],
        *,
        terminal: bool,
        on_settled: Callable[[ForkServer], None],
    ) -> None:
        import subprocess  # noqa: PLC0415

        self.name = name
        self.files = list(files)
        self.env = env
        self.ready: Ready | None = None
        self.refused: str | None = None
        self.settled = threading.Event()  # ready, refused, or gone
        self.holds_zombies = False
        self.retiring = False
        self._on_settled = on_settled
        self._replies: queue.Queue[dict[str, object] | None] = queue.Queue()
        self._children: dict[int, ForkedLeader] = {}  # forked, not yet collected
        self._send_lock = threading.Lock()
        self._closed = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server_env = {k: v for k, v in env.items() if k not in _PER_START}
            server_env["WATCHD_FORKSERVER_FD"] = str(theirs.fileno())
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                [entry.interpreter, *entry.options, SERVER],
                cwd=cwd,
                env=server_env,
                stdin=subprocess.DEVNULL,
                start_new_session=not terminal,
                # with a terminal, its apps must share watchd's session to be given the foreground
                process_group=0 if terminal else None,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = self.proc.pid
        self.channel = Channel(ours)
        self.started = time.monotonic()
        self._send({"files": files, "argv": entry.argv, "path0": entry.path0})
        self._thread = threading.Thread(target=self._read, name=f"watchd-forkserver-{name}", daemon=True)
        self._thread.start()

    def _send(self, message: dict[str, object], fds: list[int] | None = None) -> None:
        with self._send_lock:
            self.channel.send(message, fds)

    def _read(self) -> None:
        while True:
            try:
                got = self.channel.receive()
            except (OSError, ValueError):
                got = None
            if got is None:
                break
            message, fds = got
            for fd in fds:
                os.close(fd)
            if "ready" in message:
                self.ready = _ready(message["ready"])
                self.holds_zombies = self.ready.holds_zombies
                self.settled.set()
                self._on_settled(self)
            elif "refused" in message:
                self.refused = str(message["refused"])
                self.settled.set()
                self._on_settled(self)
            elif "exited" in message:
                pid, code = message["exited"], message.get("code")
                leader = self._children.get(pid) if isinstance(pid, int) else None
                if leader is not None:
                    leader.exited(code if isinstance(code, int) else LOST)
            else:
                if "forked" in message and isinstance(message["forked"], int):
                    pid = message["forked"]
                    self._children[pid] = ForkedLeader(self, pid)  # before any news of its exit
                self._replies.put(message)
        self._replies.put(None)
        if not self.settled.is_set():
            self.refused = f"the fork server exited ({self._status()})"
            self.settled.set()
            self._on_settled(self)
        for leader in list(self._children.values()):
            if not leader._done.is_set():
                leader.server_gone()

    def _status(self) -> str:
        with contextlib.suppress(Exception):
            code = self.proc.wait(1.0)
            return f"exit {code}" if code >= 0 else f"killed by signal {-code}"
        return "still running"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def fork(self, request: dict[str, object], fds: list[int], targets: list[int]) -> ForkedLeader:
        """Fork an app; OSError if it could not start (its cwd is gone) or the server did not answer."""
        self._send({"fork": {**request, "fds": targets}}, fds)
        try:
            reply = self._replies.get(timeout=FORK_TIMEOUT)
        except queue.Empty:
            raise OSError(errno.ETIMEDOUT, "the fork server did not answer") from None
        if reply is None:
            raise OSError(errno.ESRCH, "the fork server is gone")
        if "forked" in reply:
            pid = reply["forked"]
            assert isinstance(pid, int)
            return self._children[pid]
        code = reply.get("errno")
        raise OSError(code if isinstance(code, int) else 0, str(reply.get("error", "the fork failed")))

    def collect(self, pid: int) -> None:
        """The app's group is gone: the server may reap it. A retiring server ends with its last app."""
        self._children.pop(pid, None)
        if self.holds_zombies and not self._closed:
            with contextlib.suppress(OSError):
                self._send({"reap": pid})
        if self.retiring and not self._children:
            self.close()

    def retire(self) -> None:
        """No more forks: end once the apps it forked are reaped (at once if there are none)."""
        self.retiring = True
        if not self._children:
            self.close()

    def close(self, timeout: float = 2.0) -> None:
        """End it: the end of its socket, then KILL if it does not exit in `timeout`."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.channel.sock.shutdown(socket.SHUT_RDWR)
        try:
            self.proc.wait(timeout)
        except Exception:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)  # our own child, not yet reaped: the PID is ours
            self.proc.wait()
        self._thread.join(2.0)
        self.channel.sock.close()


def _ready(raw: object) -> Ready:
    data = raw if isinstance(raw, dict) else {}
    files = []
    for item in data.get("files", []):
        if isinstance(item, list) and len(item) == 3:
            files.append((str(item[0]), str(item[1]), item[2] if isinstance(item[2], str) else None))
    failed = data.get("failed", {})
    return Ready(
        pid=int(data.get("pid", 0)),
        modules=int(data.get("modules", 0)),
        files=files,
        failed={str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {},
        started_ns=int(data.get("started_ns", 0)),
        holds_zombies=bool(data.get("holds_zombies", False)),
    )


# ----------------------------------------------------------------------------- the run watch's part


@dataclass
class Warm:
    """A warm start: the forked app's leader, and how long the fork took."""

    leader: ForkedLeader
    took: float
    modules: int


@dataclass
class Preloader:
    """The fork server of one run watch: which files to preload, the server, why a start is cold."""

    name: str
    entry: Entry
    cwd: Path
    counts: Callable[[str], bool]  # whether the watch counts a file (then it is the app's own)
    post: Callable[[Callable[[], None]], None]  # run a job on the watch's thread
    post_later: Callable[[float, Callable[[], None]], None]
    environment: Callable[[], dict[str, str]]  # the app's environment, for the server
    terminal: bool
    cache: Path | None = None
    files: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    server: ForkServer | None = None  # ready
    pending: ForkServer | None = None  # starting
    refused: str | None = None  # why no server serves this list (until the list grows)
    snapshot: dict[str, tuple[int, int, int] | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _noted: set[str] = field(default_factory=set)
    _grown: int = 0  # reports that added stable files (a timer per report checks it is the last)
    _tries: int = 0
    _said: set[str] = field(default_factory=set)
    _closed: bool = False

    def __post_init__(self) -> None:
        if self.cache is not None:
            files, self.left_out = read_cache(self.cache)
            self.files = [f for f in files if self._stable(f)]
            self._noted.update(self.files)

    # -- the list ---------------------------------------------------------------------

    def _stable(self, path: str) -> bool:
        """Outside the app: not counted by the watch, not below its cwd (but site-packages)."""
        if not os.path.isabs(path) or self.counts(path):
            return False
        if path.startswith(str(self.cwd) + os.sep):
            parts = path.split(os.sep)
            return "site-packages" in parts or "dist-packages" in parts
        return path != SERVER

    def noted(self, files: list[str]) -> None:
        """The import hook reported files (its reader thread): the stable ones join the list."""
        fresh = [f for f in files if f not in self._noted and self._stable(f)]
        if not fresh:
            return
        with self._lock:
            self._noted.update(fresh)
            self.files.extend(fresh)
            self._grown += 1
            grown = self._grown
        self.post_later(QUIET_BEFORE_START, lambda: self._quiet(grown))

    def _quiet(self, grown: int) -> None:
        """The watch's thread: the reports have been quiet for a while: a server for the new list."""
        if grown != self._grown or self._closed:
            return
        if self.cache is not None:
            write_cache(self.cache, self.files, self.left_out)
        known = set(self.server.files) if self.server is not None else set()
        if self.pending is None and (self.server is None or not known.issuperset(self._wanted())):
            self.refused = None
            self._tries = 0
            self.start_server()

    def _wanted(self) -> list[str]:
        return [f for f in self.files if f not in self.left_out]

    # -- servers ----------------------------------------------------------------------

    def start_server(self) -> None:
        """A new server for the list as it is (the watch's thread); it serves once it has settled."""
        if self._closed or self.pending is not None or self.refused is not None:
            return
        wanted = self._wanted()
        if not wanted:
            return
        self._tries += 1
        try:
            self.pending = ForkServer(
                self.name,
                self.entry,
                self.environment(),
                self.cwd,
                wanted,
                terminal=self.terminal,
                on_settled=lambda s: self.post(lambda: self._settled(s)),
            )
        except OSError as exc:
            self._refuse(f"the fork server could not start: {exc.strerror or exc}")
            return
        log.debug("%s: fork server pid %d preloading %d files", self.name, self.pending.pid, len(wanted))

    def _settled(self, server: ForkServer) -> None:
        """The watch's thread: a server is ready, refused, or died before."""
        if server is not self.pending:
            return
        self.pending = None
        if server.ready is None:
            server.close()
            self._refuse(server.refused or "the fork server ended")
            return
        ready = server.ready
        left: dict[str, str] = {}
        for path, why in ready.failed.items():
            left[path] = f"its import failed: {why}"
        for module, path, culprit in ready.files:
            # (the server's own file is its __main__, also as multiprocessing's __mp_main__)
            if culprit is not None and path != SERVER and not self._stable(path) and culprit not in left:
                left[culprit] = f"importing it imported {module} ({path}), the app's own code"
        snapshot = {path: _stat(path) for _module, path, _culprit in ready.files}
        changed = [p for p, st in snapshot.items() if st is None or st[0] >= ready.started_ns]
        if left or changed:
            server.close()
            self.left_out.update(left)
            for path, why in left.items():
                log.debug("%s: not preloading %s: %s", self.name, path, why)
            if self.cache is not None:
                write_cache(self.cache, self.files, self.left_out)
            if self._tries >= MAX_TRIES:
                first = next(iter(left.items()), None)
                why = f"{first[0]}: {first[1]}" if first else f"{changed[0]} keeps changing"
                self._refuse(f"no preload held after {self._tries} tries ({why})")
                return
            self.start_server()
            return
        old, self.server = self.server, server
        self.snapshot = snapshot
        with self._lock:  # what the server holds is no news when its apps report it
            self._noted.update(snapshot)
        self._tries = 0
        if old is not None:
            old.retire()
        log.log(
            logging.DEBUG if "ready" in self._said else logging.INFO,
            "%s: warm restarts: fork server pid %d preloaded %d modules in %.2f s",
            self.name,
            server.pid,
            ready.modules,
            time.monotonic() - server.started,
        )
        self._said.add("ready")

    def _refuse(self, why: str) -> None:
        self.refused = why
        self.say_once(why)

    def say_once(self, why: str) -> None:
        if why not in self._said:
            self._said.add(why)
            log.info("%s: restarts start a new interpreter (cold): %s", self.name, why)

    def _stale(self) -> str | None:
        for path, before in self.snapshot.items():
            if _stat(path) != before:
                return path
        return None

    # -- a start ----------------------------------------------------------------------

    def fork(
        self, request: dict[str, object], fds: list[int], targets: list[int], watch_env: dict[str, str]
    ) -> Warm | str:
        """Fork the app (the watch's thread), or why this start is cold. `watch_env`: the watch's
        own variables now (env_file, env): the server must have imported with the same."""
        started = time.monotonic()
        server = self.server
        if self.refused is not None:
            return self.refused
        if server is None or not server.alive:
            if server is not None:
                self.server = None
                server.close()
            if self.pending is not None:
                return "the fork server is still preloading"
            self.start_server()
            return "no fork server yet (it starts once the app has run)"
        changed = self._stale()
        if changed is None and any(server.env.get(k) != v for k, v in watch_env.items()):
            changed = "the watch's environment (env, env_file)"
        if changed is not None:
            self.server = None
            server.retire()
            self._tries = 0
            self.start_server()
            return f"{changed} changed since the fork server imported it (a new one is preloading)"
        try:
            leader = server.fork(request, fds, targets)
        except OSError as exc:
            if exc.errno in (errno.ETIMEDOUT, errno.ESRCH):
                self.server = None
                server.close()
                self.start_server()
            raise
        assert server.ready is not None
        return Warm(leader, time.monotonic() - started, server.ready.modules)

    def close(self) -> None:
        """The watch ends (its apps are stopped): every server goes."""
        self._closed = True
        for server in (self.pending, self.server):
            if server is not None:
                server.close()
        self.pending = self.server = None
