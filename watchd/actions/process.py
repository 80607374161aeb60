"""Child processes for commands, checks and apps: spawn, wait, stop, and the terminal.

Environment given to commands, checks and apps (see README, "How changed paths reach commands"):

    WATCHD_WATCH         the watch's name
    WATCHD_COUNT         how many distinct paths changed
    WATCHD_PATH          the first changed path, exactly (any bytes but NUL)
    WATCHD_CHANGED       every changed path, one per line, capped at 32 KiB (whole lines)
    WATCHD_TRUNCATED     "1" if WATCHD_CHANGED was capped, else "0"
    WATCHD_TRIGGER       "change"; "manual" for `watchd trigger`, SIGUSR1, the r key; "start" (no paths then)
    WATCHD_CHANGED_FILE  a file listing every path, each followed by a NUL byte: exact for any name
                         (unset when no file can be made: see `write_list_file`)
    watch_src_path, watch_dest_path, watch_event_type, watch_object
                         the first change, under watchmedo's names, so its shell-command lines work

Every child leads its own process group, and stopping it means stopping the group: the stop
signal to the group, then -- once the group has had `timeout` seconds -- SIGKILL to whatever is
left, then a wait until no process of the group runs. "The group", not "the child": under
`sh -c` the shell leads the group and dies on TERM at once while the program it started is
still shutting down; waiting only for the leader would cut that program's grace period short.

Without a terminal a child gets its own session and stdin from /dev/null. When watchd's stdin
is the terminal it runs in the foreground of, an app gets the terminal: its process group
becomes the foreground group, so Ctrl-C reaches the app and pdb reads the keyboard (see
`Terminal`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from watchd import platform
from watchd.changes import Batch, ChangeKind
from watchd.model import KILL_WAIT, Stop

if TYPE_CHECKING:
    import subprocess

    from watchd.terminal import Terminal

# subprocess and tempfile are imported when a command first runs: a watch that only signals
# never needs them, and they are ~8 ms of every start.

log = logging.getLogger(__name__)

CHANGED_CAP = 32 * 1024  # bytes; one env string may be 128 KiB on Linux, all of them ~2 MiB
DRAIN_MAX = 1.0  # the longest a stop waits for a moment the app holds no accepted connection
_POLL = 0.02
_GONE_POLL_MIN, _GONE_POLL_MAX = 0.002, 0.05


def changed_environment(name: str, batch: Batch, list_file: str | None) -> dict[str, str]:
    """The WATCHD_* (and watchmedo-compatible) variables for `batch` (no WATCHD_CHANGED_FILE
    without a `list_file`)."""
    paths = batch.paths
    lines: list[str] = []
    size = 0
    for p in paths:
        n = len(os.fsencode(p)) + 1
        if size + n > CHANGED_CAP:
            break
        lines.append(p)
        size += n
    first = batch.changes[0] if batch.changes else None
    env = {
        "WATCHD_WATCH": name,
        "WATCHD_COUNT": str(len(paths)),
        "WATCHD_PATH": paths[0] if paths else "",
        "WATCHD_CHANGED": "\n".join(lines),
        "WATCHD_TRUNCATED": "1" if len(lines) < len(paths) else "0",
        "WATCHD_TRIGGER": batch.trigger,
        "watch_src_path": first.path if first else "",
        "watch_dest_path": (first.dest or "") if first else "",
        "watch_event_type": first.kind.value if first else "",
        "watch_object": ("directory" if first.is_dir else "file") if first else "",
    }
    if list_file:
        env["WATCHD_CHANGED_FILE"] = list_file
    if first is not None and first.kind is ChangeKind.MOVED:
        env["watch_event_type"] = "moved"
    return env


def child_environment(
    name: str, batch: Batch, list_file: str | None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """watchd's environment, the watch's own variables (`extra`: env_file, env), then the
    variables for `batch`."""
    env = dict(os.environ)
    env.pop("WATCHD_CHANGED_FILE", None)  # watchd run by watchd: that file is its parent's, not this batch's
    env.update(extra or {})
    env.update(changed_environment(name, batch, list_file))
    return env


# ----------------------------------------------------------------------------- WATCHD_CHANGED_FILE


def anonymous_fd(name: str) -> int | None:
    """A new anonymous file (Linux: memfd_create), close-on-exec; None where the platform has none.

    Its descriptor is 10 or above, clear of the 3-9 that shell scripts redirect by number (and of
    fd 3, where the socket-activation wrapper puts an app's listener). Raises OSError if the
    platform has anonymous files but cannot make one now (out of descriptors, seccomp).
    """
    fd = platform.current.memfd(name)
    if fd is None:
        return None
    import fcntl  # noqa: PLC0415 (only with an anonymous file)

    if fd < 10:
        try:
            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        finally:
            os.close(fd)
        fd = high
    return fd


@dataclass(slots=True)
class ListFile:
    """The file behind one child's WATCHD_CHANGED_FILE.

    `path` is what the child opens: /dev/fd/N for an anonymous file the child inherits as fd N
    (`fd`, passed with pass_fds), else a private temporary file's name (`temp`), else None (no
    file: the variable is unset). On Linux, opening /dev/fd/N opens the file afresh, from its
    start: a command may read it twice, and the processes it starts read it too as long as they
    keep fd N (a program that closes inherited descriptors, such as Python's subprocess by
    default, takes it from its own children). watchd closes the anonymous file once the child
    has started (`handed_over`) and removes a temporary file once the child is done (`discard`).
    """

    path: str | None
    fd: int | None = None
    temp: str | None = None

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.fd,) if self.fd is not None else ()

    def handed_over(self) -> None:
        """The child started (or could not): it holds its own copy of the anonymous file."""
        fd, self.fd = self.fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> ListFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def discard(self) -> None:
        """The child is done: nothing of the file is left in watchd (idempotent)."""
        self.handed_over()
        temp, self.temp = self.temp, None
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def write_list_file(name: str, paths: tuple[str, ...]) -> ListFile:
    """Every path of watch `name`'s batch, each followed by a NUL byte, in an anonymous file where
    the platform has one, else in a private temporary file.

    Never raises: with neither (no memfd_create, no writable temporary directory -- a container
    with a read-only root filesystem), there is no file and WATCHD_CHANGED_FILE is unset, which the
    watch's log says once; WATCHD_PATH and WATCHD_CHANGED still carry the paths.
    """
    why: list[str] = []
    try:
        fd = anonymous_fd("watchd-changed")
    except OSError as exc:
        fd = None
        why.append(f"memfd_create: {exc.strerror or exc}")
    if fd is not None:
        try:
            _write_paths(fd, paths)
        except OSError as exc:
            os.close(fd)
            why.append(f"memfd: {exc.strerror or exc}")
        else:
            return ListFile(f"/dev/fd/{fd}", fd=fd)
    import tempfile  # noqa: PLC0415 (lazy, see the module's imports)

    try:
        fd, temp = tempfile.mkstemp(prefix="watchd-", suffix=".changed")
    except OSError as exc:
        why.append(f"temporary file: {exc.strerror or exc}")
    else:
        try:
            _write_paths(fd, paths)
        except OSError as exc:
            why.append(f"temporary file {temp}: {exc.strerror or exc}")
            with contextlib.suppress(OSError):
                os.unlink(temp)
        else:
            return ListFile(temp, temp=temp)
        finally:
            os.close(fd)
    warn_once(
        name,
        "WATCHD_CHANGED_FILE",
        "%s: WATCHD_CHANGED_FILE is unset: no file can hold the changed paths (%s); "
        "WATCHD_PATH and WATCHD_CHANGED still name them (said once)",
        name,
        "; ".join(why),
    )
    return ListFile(None)


def _write_paths(fd: int, paths: tuple[str, ...]) -> None:
    with open(fd, "wb", closefd=False) as f:
        for p in paths:
            f.write(os.fsencode(p))
            f.write(b"\0")


def scratch_file(name: str) -> IO[bytes]:
    """An unnamed file to write and read back (a check's output): anonymous where the platform
    has one, else a temporary file. Raises OSError if neither can be made."""
    try:
        fd = anonymous_fd(name)
    except OSError:
        fd = None
    if fd is not None:
        return open(fd, "w+b")
    import tempfile  # noqa: PLC0415 (lazy, see the module's imports)

    return tempfile.TemporaryFile()


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_once(name: str, topic: str, msg: str, *args: object) -> None:
    """Log a warning about `topic` once for watch `name` (every later time at DEBUG): a lasting
    condition (no temporary directory) must not repeat itself on every change."""
    with _warned_lock:
        first = (name, topic) not in _warned
        _warned.add((name, topic))
    log.log(logging.WARNING if first else logging.DEBUG, msg, *args)


def batch_environment(
    name: str, batch: Batch, extra: Mapping[str, str] | None = None
) -> tuple[dict[str, str], ListFile]:
    """The environment of a child answering watch `name`'s `batch` -- a command, a check or an app
    -- and the file behind its WATCHD_CHANGED_FILE, which the caller discards when the child is
    done (`with listed:` around a command's run)."""
    listed = write_list_file(name, batch.paths)
    return child_environment(name, batch, listed.path, extra), listed


def describe_status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def shell_status(code: int) -> int:
    """An exit status as a shell reports it: 128 + N for a process killed by signal N."""
    return 128 - code if code < 0 else code


def argv_for(command: str | tuple[str, ...]) -> list[str]:
    """A string runs with /bin/sh -c; a sequence runs as it is, without a shell."""
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


# ----------------------------------------------------------------------------- children


@dataclass(frozen=True, slots=True)
class Drain:
    """The listener an app accepts connections on (TCP `port`, or Unix socket `path`)."""

    port: int = 0
    path: str = ""


class StopDenied(Exception):
    """The group could not be signalled (EPERM: a member runs as another user)."""


@dataclass(frozen=True, slots=True)
class Stopped:
    """How stopping a child's group went."""

    code: int | None  # the leader's exit status (negative: killed by that signal); None if unknown
    took: float
    killed: bool  # the group outlived the stop timeout and got SIGKILL
    lingering: bool = False  # processes of the group still ran after SIGKILL (uninterruptible?)

    def status(self) -> str:
        return describe_status(self.code) if self.code is not None else "status unknown"


ExitCallback = Callable[["Child"], None]


class Leader(Protocol):
    """The process that leads a child's group, as its parent sees it: `spawn`'s Popen, or an app
    a fork server forked (watchd.actions.preload)."""

    pid: int
    holds_zombie: bool  # `wait` leaves it unreaped until `collect`: its PID stays taken

    def wait(self) -> int:
        """Block until it exits; its exit status (negative: killed by that signal)."""

    def collect(self) -> None:
        """Reap it (after `wait`): its PID may be reused from now."""


class PopenLeader:
    """A child watchd started itself: waited for where the platform can wait without reaping."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._side = platform.current  # the one that waits for the leader also reaps it
        self.holds_zombie = self._side.HOLD_ZOMBIE_LEADER

    def wait(self) -> int:
        if self.holds_zombie:
            code = self._side.wait_unreaped(self.pid)
            if code is not None:
                return code
        return self.proc.wait()  # (also where it was reaped elsewhere: Popen's status)

    def collect(self) -> None:
        with contextlib.suppress(ChildProcessError):
            self.proc.wait()


class Child:
    """A running child process that leads its own process group.

    One waiter thread per child blocks until it exits (no polling, no CPU while the app runs),
    records the exit status, sets `done` and calls `on_exit`. Everything else waits on `done`.

    Where its parent can wait without reaping (Linux: platform.current.HOLD_ZOMBIE_LEADER; a fork
    server on Linux), the leader is left unreaped until `reap()`, called once its group is gone:
    while the leader is a zombie its PID -- which is the group's id -- cannot be given to another
    process, so a late signal to the group can never reach a stranger's group.
    """

    def __init__(
        self,
        leader: Leader,
        *,
        on_exit: ExitCallback | None = None,
        terminal: Terminal | None = None,
        on_terminal_signal: Callable[[Child, int, bool], None] | None = None,
    ) -> None:
        self.leader = leader
        self.pid = leader.pid
        self.pgid = leader.pid  # it was started as the leader of a new group
        self.started = time.monotonic()
        self.ended: float | None = None
        self.code: int | None = None
        self.done = threading.Event()
        self.stopping = False  # watchd is stopping it: its exit is no news
        self.terminal = terminal
        self._on_exit = on_exit
        self._on_terminal_signal = on_terminal_signal
        self._sentinel_thread: threading.Thread | None = None
        self._sentinel: int | None = None
        self.keyboard: tuple[int, float] | None = None  # (SIGINT or SIGQUIT, when) from the keyboard
        self._side = platform.current
        self._hold_leader = leader.holds_zombie
        self._reaped = False
        threading.Thread(target=self._wait, name=f"watchd-wait-{self.pid}", daemon=True).start()
        if terminal is not None:
            self._start_sentinel()  # first: a Ctrl-C as soon as the app has the terminal reaches it too
            terminal.give(self.pgid)
            # The app may have read the terminal before it was given the foreground and been
            # stopped (SIGTTIN) for it: let it go on.
            with contextlib.suppress(OSError):
                os.killpg(self.pgid, signal.SIGCONT)

    def _wait(self) -> None:
        self.code = self.leader.wait()
        if not self._hold_leader:
            self._reaped = True
        self.ended = time.monotonic()
        self.done.set()
        if self._on_exit is not None:
            self._on_exit(self)

    def reap(self) -> None:
        """Collect the exited leader (after its group is gone): its PID may be reused from now."""
        if self.done.is_set() and not self._reaped:
            self._reaped = True
            self.leader.collect()

    @property
    def uptime(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    # -- the terminal's signals ------------------------------------------------------

    def _start_sentinel(self) -> None:
        """Put a `sleep` into the app's group, to learn what the keyboard sends that group.

        Ctrl-C goes to the foreground group only, so watchd itself never sees it; many apps
        catch it and exit 0 (Flask, Django), which looks like any other exit. The sentinel does
        not catch it: dying by SIGINT (or SIGQUIT), or stopping on SIGTSTP, it tells watchd
        that the user pressed Ctrl-C (Ctrl-\\, Ctrl-Z).
        """
        import shutil  # noqa: PLC0415 (only with a terminal)

        sleep = shutil.which("sleep")
        if sleep is None:
            return
        try:
            pid = self._sentinel = os.posix_spawn(
                sleep,
                ["sleep", "2147483647"],
                {"PATH": os.defpath},
                setpgroup=self.pgid,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)],
            )
        except OSError:
            return  # the app already exited (no group to join): nothing to watch
        self._sentinel_thread = threading.Thread(
            target=self._watch_sentinel, args=(pid,), name=f"watchd-tty-{self.pid}", daemon=True
        )
        self._sentinel_thread.start()

    def rearm_sentinel(self) -> None:
        """After a Ctrl-C the app survived (pdb took it): watch for the next one."""
        thread = self._sentinel_thread
        if thread is not None and not thread.is_alive() and not self.done.is_set() and not self.stopping:
            self.keyboard = None
            self._start_sentinel()

    def join_sentinel(self, timeout: float) -> None:
        """Wait until the sentinel's death has been seen (call once the group is gone)."""
        thread = self._sentinel_thread
        if thread is not None:
            thread.join(timeout)

    def _watch_sentinel(self, pid: int) -> None:
        while True:
            try:
                _, status = os.waitpid(pid, os.WUNTRACED)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if os.WIFSTOPPED(status):
                # Ctrl-Z only: SIGTTIN/SIGTTOU (a background read or write) are no keypress
                keypress = os.WSTOPSIG(status) == signal.SIGTSTP and self._in_foreground()
                if keypress and not self.stopping and self._on_terminal_signal is not None:
                    self._on_terminal_signal(self, signal.SIGTSTP, True)
                continue
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                if sig in (signal.SIGINT, signal.SIGQUIT) and not self.stopping:
                    self.keyboard = (sig, time.monotonic())
                    if self._on_terminal_signal is not None:
                        self._on_terminal_signal(self, sig, False)
            return

    def _in_foreground(self) -> bool:
        if self.terminal is None:
            return False
        try:
            return os.tcgetpgrp(self.terminal.fd) == self.pgid
        except OSError:
            return False

    def resume(self) -> None:
        """After a Ctrl-Z and `fg`: the foreground back to the app, and let its group go on."""
        if self.terminal is not None and self.terminal.foreground() == self.terminal.pgrp:
            self.terminal.give(self.pgid)
        with contextlib.suppress(OSError):
            os.killpg(self.pgid, signal.SIGCONT)

    # -- stopping ------------------------------------------------------------------

    def _signal_group(self, sig: int) -> bool:
        """Send `sig` to the group; False if nothing of it is left. StopDenied on EPERM."""
        if self.pgid <= 1:  # never: but killpg(0 or 1) would reach far more than the child
            raise StopDenied(f"refusing to signal process group {self.pgid}")
        if self._reaped and self._hold_leader:
            return False  # its group was gone when it was reaped; the id may be another's now
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            raise StopDenied(
                f"permission denied signalling process group {self.pgid} (a process in it runs as "
                "another user)"
            ) from None
        return True

    def group_running(self, *, sentinel: bool = True) -> bool:
        """Whether any process of the child's group still runs (not counting the terminal
        sentinel, unless `sentinel`)."""
        if not self.done.is_set():
            return True
        if self._reaped and self._hold_leader:
            return False
        if not sentinel:
            self._end_sentinel()
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # killpg succeeds on zombies too: only running members count
        return bool(self._side.group_members(self.pgid))

    def wait_gone(self, deadline: float) -> bool:
        """Wait until no process of the group runs, or `deadline`; return whether it is gone."""
        pause = _GONE_POLL_MIN
        while True:
            if not self.done.is_set():
                self.done.wait(max(0.0, min(deadline - time.monotonic(), _GONE_POLL_MAX)))
                if not self.done.is_set():
                    if time.monotonic() >= deadline:
                        return False
                    continue
            if not self.group_running():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, _GONE_POLL_MAX)

    def quiesce(self, drain: Drain, deadline: float) -> bool:
        """Freeze the group (SIGSTOP) at a moment it holds no connection accepted on `drain`.

        For apps that die at once on the stop signal (Werkzeug's, Django's development servers):
        a request they had accepted would be cut off. Frozen with none in hand, they accept no
        more; the stop signal then lands before they run again, and connections that arrive
        meanwhile wait in the listener's backlog for the next app. Gives up at `deadline` (a
        keep-alive connection may never close), or at once where the platform cannot count the
        connections, and returns False.
        """
        pause = 0.001
        while True:
            if not self._signal_group(signal.SIGSTOP):
                return True  # nothing left to freeze
            idle = unknown = False
            try:
                members = self._frozen(deadline)
                if members is not None:
                    held = self._side.accepted_connections(members, port=drain.port, path=drain.path)
                    unknown = held is None
                    idle = held == 0
            finally:
                if not idle:  # never leave the group frozen, whatever went wrong
                    self._signal_group(signal.SIGCONT)
            if idle:
                return True
            if unknown:  # the platform cannot count them: stop now, as without a listener
                return False
            now = time.monotonic()
            if now >= deadline:
                return False
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.02)

    def _frozen(self, deadline: float) -> list[int] | None:
        """The group's processes once all of them have stopped (SIGSTOP is not synchronous on
        another CPU), or None if they did not by `deadline`."""
        while True:
            states = self._side.group_members(self.pgid)
            if all(self._side.all_threads_stopped(pid) for pid in states):
                return list(states)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.0005)

    def stop(self, how: Stop, drain: Drain | None = None) -> Stopped:
        """Stop the whole group: `how.signal`, then SIGKILL after `how.timeout`; wait until gone.

        With `drain`, first wait (at most DRAIN_MAX) for a moment the app holds no accepted
        connection (see `quiesce`). Raises StopDenied if the group cannot be signalled (the
        child keeps running).
        """
        self.stopping = True
        try:
            return self._stop(how, drain)
        except StopDenied:
            self.stopping = False  # it goes on running: its exit is news again
            raise

    def _stop(self, how: Stop, drain: Drain | None) -> Stopped:
        started = time.monotonic()
        killed = lingering = False
        if drain is not None:
            self.quiesce(drain, started + min(how.timeout, DRAIN_MAX))
        if self._signal_group(how.signal):
            # a stopped group (Ctrl-Z, SIGSTOP) must go on to act on the signal
            with contextlib.suppress(OSError):
                os.killpg(self.pgid, signal.SIGCONT)
            if not self.wait_gone(started + how.timeout):
                killed = True
                self._signal_group(signal.SIGKILL)
                lingering = not self.wait_gone(time.monotonic() + KILL_WAIT)
        self.done.wait(KILL_WAIT)
        if not lingering:
            self.reap()
        return Stopped(self.code, time.monotonic() - started, killed, lingering)

    def clean_up_group(self, how: Stop) -> Stopped | None:
        """After the leader exited by itself: stop what it left running in its group, if anything
        (the terminal sentinel goes quietly)."""
        if not self.group_running(sentinel=False):
            return None
        return self.stop(how)

    def _end_sentinel(self) -> None:
        pid, self._sentinel = self._sentinel, None
        if pid is not None:
            # Not `stopping`: the sentinel thread may not have looked yet at a SIGINT that killed the
            # sentinel with the app (a real Ctrl-C), and `stopping` would make it ignore that. Its
            # own SIGKILL below is never taken for a keypress (only SIGINT/SIGQUIT are).
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)  # our own child, not yet reaped: the PID is ours
            self.join_sentinel(KILL_WAIT)


def spawn(
    command: str | tuple[str, ...],
    *,
    cwd: Path,
    env: dict[str, str],
    output: IO[bytes] | None = None,
    terminal: Terminal | None = None,
    stdin_fd: int | None = None,
    on_exit: ExitCallback | None = None,
    on_terminal_signal: Callable[[Child, int, bool], None] | None = None,
    argv: list[str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Child:
    """Start `command` leading a new process group; raises OSError if it cannot start.

    Output goes to `output` (a file) or, if None, to watchd's own stdout/stderr. With a
    `terminal` the child stays in watchd's session and gets the foreground; without one it
    gets its own session. stdin is `stdin_fd` if given, else the terminal, else /dev/null.
    """
    import subprocess  # noqa: PLC0415 (lazy, see the module's imports)

    stdin: int | None = stdin_fd
    if stdin is None and terminal is None:
        stdin = subprocess.DEVNULL
    proc = subprocess.Popen(
        argv if argv is not None else argv_for(command),
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=terminal is None,
        process_group=0 if terminal is not None else None,
        pass_fds=pass_fds,
    )
    return Child(PopenLeader(proc), on_exit=on_exit, terminal=terminal, on_terminal_signal=on_terminal_signal)


@dataclass(frozen=True, slots=True)
class Finished:
    """How a command or check ended."""

    code: int | None  # exit status, negative for a signal; None when watchd stopped it
    took: float
    timed_out: bool = False
    stopped: bool = False  # by the stop event (restart, shutdown)
    stop_failed: str | None = None  # why the group could not be stopped (it may still run)

    @property
    def ok(self) -> bool:
        return self.code == 0

    def status(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.stopped:
            return "stopped"
        assert self.code is not None
        return describe_status(self.code)


def run_child(
    command: str | tuple[str, ...],
    *,
    cwd: Path,
    env: dict[str, str],
    cancel: threading.Event,
    timeout: float | None,
    how: Stop,
    output: IO[bytes] | None = None,
    list_file: ListFile | None = None,
) -> Finished:
    """Run `command` to the end, a timeout, or `cancel`; its process group goes with it.

    `list_file` is the child's WATCHD_CHANGED_FILE: its anonymous file, if it has one, is passed
    to the child and closed here once the child has started. Raises OSError if it cannot start
    (no such program, no such cwd).
    """
    try:
        child = spawn(
            command, cwd=cwd, env=env, output=output, pass_fds=list_file.pass_fds if list_file else ()
        )
    finally:
        if list_file is not None:
            list_file.handed_over()
    try:
        while not child.done.wait(_POLL):
            timed_out = timeout is not None and child.uptime >= timeout
            if cancel.is_set() or timed_out:
                try:
                    child.stop(how)
                except StopDenied as exc:
                    return Finished(None, child.uptime, timed_out, not timed_out, stop_failed=str(exc))
                return Finished(None, child.uptime, timed_out=timed_out, stopped=not timed_out)
        assert child.code is not None
        return Finished(child.code, child.uptime)
    finally:
        child.reap()


CLEAR_SCREEN = b"\x1b[H\x1b[2J\x1b[3J"  # home, clear the screen, and its scrollback (as `clear`)


def clear_screen() -> None:
    """`clear: true`: a clean terminal before a command or an app starts; nothing when stdout
    is a file or a pipe (a log must not fill with escape codes)."""
    if os.isatty(1):
        with contextlib.suppress(OSError):
            os.write(1, CLEAR_SCREEN)
