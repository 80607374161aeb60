"""Signal the process named by a pidfile: the graceful reload of gunicorn and uWSGI.

The pidfile is re-read at every trigger (servers rewrite it: gunicorn on every HUP, and a USR2
upgrade leaves a moment with none), and what it names is checked before the signal, because a
wrong PID here is a signal to the wrong process. `watchd.trust` decides whether the pidfile may
be believed (its type, mode, owner, the path to it); then, here:

- PID 0, 1, negative or watchd's own are refused (kill(0) hits watchd's group, kill(-1) every process);
- the process must exist and not be a zombie (kill(pid, 0) succeeds on zombies: the platform's
  process table says);
- it must have started before the pidfile was last written, else the PID was reused;
- it must run as the user a pidfile others could write is restricted to;
- its command line must contain `expect`, and it must be in systemd unit `unit`, when set.

All of that is checked through a pidfd opened first (Linux 5.3+): the signal goes through the
same pidfd, so a process that exits and whose PID is reused meanwhile can never receive it.
Without pidfds (macOS, old kernels) the start time is checked again just before kill().

What a process is (its start time, command line, owner, state) comes from `watchd.platform`:
/proc on Linux, psutil on macOS.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import threading
import time
from dataclasses import dataclass

from watchd import platform, trust
from watchd.actions import Context, PerBatch, byname, confirm
from watchd.actions.confirm import Confirmations
from watchd.actions.pysource import invalidate_bytecode
from watchd.changes import Batch
from watchd.errors import ActionError
from watchd.logtext import signal_name
from watchd.model import OnBusy, PidfileSettings, ProcessSettings
from watchd.outcome import Outcome, Result

log = logging.getLogger(__name__)

_RETRY_EVERY = 0.025
# start times have clock-tick (10 ms) resolution on Linux; allow for that and a little skew.
_START_TOLERANCE = 0.1


@dataclass(slots=True)
class Target:
    pid: int
    name: str  # for log lines: the program's name (see program_name)
    cmdline: str
    started: float = 0.0  # ProcessInfo.started: the same PID with another start is another process
    pidfd: int | None = None  # open while the target is being signalled; owned by the signaller

    def close(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


def _gone(pid: int) -> ActionError:
    return ActionError(f"no process with PID {pid} (stale pidfile? is the server running?)")


def open_pidfd(pid: int) -> int | None:
    """A pidfd for `pid`, or None where the system has none (the caller falls back to kill)."""
    try:
        return platform.current.pidfd_open(pid)
    except ProcessLookupError:
        raise _gone(pid) from None
    except OSError as exc:
        raise ActionError(f"cannot inspect PID {pid}: {exc.strerror}") from None


def unreadable(pid: int, exc: OSError) -> ActionError:
    """Fail closed: a process watchd may not inspect is refused, never taken for fine."""
    where = exc.filename or f"PID {pid}"
    return ActionError(f"cannot inspect PID {pid}: permission denied reading {where}: refused")


def inspect_process(pid: int, pidfile_mtime: float | None = None) -> Target:
    """Check that `pid` is a live process that could have written the pidfile; describe it."""
    if pid == os.getpid():
        raise ActionError(f"PID {pid} is watchd itself: refused (the pidfile must name the server)")
    side = platform.current
    try:
        info = side.process_info(pid)
        if info is None:
            raise _gone(pid)
        argv = side.cmdline(pid) if not info.exited else []
    except PermissionError as exc:  # fail closed: unreadable is not "alive and fine"
        raise unreadable(pid, exc) from None
    except OSError as exc:
        raise ActionError(f"cannot inspect PID {pid}: {exc.strerror}") from None
    name = info.name
    if info.exited:
        raise ActionError(f"PID {pid} ({name}) has exited (zombie): not signalled; is the server restarting?")
    if argv is None:  # gone between the two reads
        raise _gone(pid)
    if pidfile_mtime is not None:
        written = pidfile_mtime - (time.time() - side.uptime())  # on the start times' clock
        if info.started > written + _START_TOLERANCE:
            raise ActionError(
                f"PID {pid} ({name}) started {info.started - written:.1f} s after the pidfile was "
                "written: the PID was reused by another process (stale pidfile); not signalled"
            )
    return Target(pid, program_name(name, argv), " ".join(argv), info.started)


_INTERPRETER = re.compile(r"^(python|pypy)[\d.]*$")


def program_name(comm: str, argv: list[str]) -> str:
    """A name for log lines: the kernel's, or for `python3 /venv/bin/gunicorn ...` the script's."""
    if _INTERPRETER.match(comm) and len(argv) > 1:
        rest = argv[1:]
        if rest[0] == "-m" and len(rest) > 1:
            return rest[1]
        if not rest[0].startswith("-"):
            return os.path.basename(rest[0])
    return comm


class SignalAction(PerBatch):
    """The signal action; `resolve` finds its target (the PID in a pidfile, or a process by
    name). `ctx.kill` is injectable so PID 0/1/-1 paths are testable safely."""

    on_busy = OnBusy.QUEUE
    grace = 0.0
    names_another = "the pidfile names another"  # a unit: refusal's guess at what went wrong

    def __init__(self, action: PidfileSettings | ProcessSettings, ctx: Context) -> None:
        self.name = ctx.name
        self.action = action
        self.base = ctx.base
        self.dry_run = ctx.dry_run
        self.kill = ctx.kill
        # pidfds (where the platform has them) unless a kill function was injected (tests of the
        # refusals record its calls)
        self._pidfds = ctx.kill is os.kill
        self.not_done = f"{signal_name(action.signal)} not sent"
        self._confirmations = Confirmations(ctx.name, ctx.tally)

    def close(self, deadline: float) -> None:
        self._confirmations.close(deadline)

    def resolve(self, cancel: threading.Event) -> Target:
        """The process to signal, checked, with a pidfd open on it where the system has pidfds
        (the caller closes it); ActionError says why there is none to trust."""
        raise NotImplementedError

    def _vetted(self, target: Target, owner: int | None, why: str) -> Target:
        """The checks both ways of finding a target share, made after its pidfd was opened (what
        they describe is what it holds). `owner`: the user it must run as, None for any (`why`
        says why there is one)."""
        pid = target.pid
        side = platform.current
        try:
            uids = side.uids(pid) if owner is not None else None
            cgroup = side.cgroup(pid) if self.action.unit else None
        except PermissionError as exc:
            raise unreadable(pid, exc) from None
        except OSError as exc:
            raise ActionError(f"cannot inspect PID {pid}: {exc.strerror}") from None
        trust.check_user(owner, why, pid, uids)
        if self.action.unit:
            if cgroup == "":  # a platform without cgroups
                raise ActionError(
                    f"PID {pid} ({target.name}): its systemd unit cannot be checked here "
                    f"(unit: {self.action.unit} needs Linux's cgroups): refused"
                )
            if not trust.in_unit(cgroup or "", self.action.unit):
                raise ActionError(
                    f"PID {pid} ({target.name}) is not in unit {self.action.unit}: refused "
                    f"({self.names_another} process, or unit: names another service)"
                )
        if self.action.expect and self.action.expect not in target.cmdline:
            raise ActionError(
                f"PID {pid} ({target.name}) is not the expected process: its command line "
                f"{target.cmdline[:80]!r} does not contain {self.action.expect!r}; not signalled"
            )
        if target.pidfd is not None:
            try:  # still the process that was checked (a pidfd never refers to a reused PID)
                platform.current.pidfd_send_signal(target.pidfd, 0)
            except ProcessLookupError:
                raise ActionError(f"PID {pid} ({target.name}) exited while it was being checked") from None
            except PermissionError:
                raise ActionError(
                    f"permission denied sending {signal_name(self.action.signal)} to PID {pid} "
                    f"({target.name}): it belongs to another user; run watchd as that user"
                ) from None
        return target

    def _send(self, target: Target, sig: int) -> None:
        """The signal, through the target's pidfd where there is one; else by PID, after checking
        once more that the PID still names the process that was checked."""
        if target.pidfd is not None:
            platform.current.pidfd_send_signal(target.pidfd, sig)
            return
        if self.kill is os.kill:
            try:
                now = platform.current.process_info(target.pid)
            except PermissionError as exc:
                raise unreadable(target.pid, exc) from None
            if now is None or now.exited or now.started != target.started:
                raise ProcessLookupError(errno.ESRCH, "gone")
        self.kill(target.pid, sig)

    def execute(self, batch: Batch, cancel: threading.Event) -> str | None:
        sig = signal_name(self.action.signal)
        changed = batch.what(self.base)
        started = time.monotonic()
        target: Target | None = None
        try:
            target = self.resolve(cancel)
            if self.dry_run:
                target.close()
                log.info(
                    "%s: %s; would send %s to %s (pid %d) [dry run]",
                    self.name,
                    changed,
                    sig,
                    target.name,
                    target.pid,
                )
                return f"would send {sig} to {target.name} (pid {target.pid})"
            # the new workers import the changed files: never from a .pyc a same-size save
            # within the same second left looking fresh
            invalidate_bytecode(batch.paths)
            # the generation this signal must retire, however young (a reload may be under way)
            before = confirm.snapshot(target.pid) if self.action.confirm else None
            try:
                self._send(target, self.action.signal)
            except PermissionError:
                raise ActionError(
                    f"permission denied sending {sig} to PID {target.pid} ({target.name}): "
                    "it belongs to another user; run watchd as that user"
                ) from None
            except ProcessLookupError:
                raise ActionError(f"PID {target.pid} ({target.name}) exited before the signal") from None
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    raise ActionError(f"permission denied sending {sig} to PID {target.pid}") from None
                raise ActionError(f"sending {sig} to PID {target.pid} failed: {exc.strerror}") from None
        except ActionError as exc:
            if target is not None:
                target.close()
            refused = Outcome(f"{sig} not sent: {exc}", Result.REFUSED)
            log.error("%s: %s; %s not sent: %s", self.name, changed, sig, exc, extra=refused.log)
            return refused
        took = (time.monotonic() - started) * 1000
        pidfd, target.pidfd = target.pidfd, None  # the confirmation's now (it closes it)
        waiting = self._confirmations.follow(
            target.pid,
            target.started,
            process=target.name,
            signame=sig,
            before=before,
            timeout=self.action.confirm_timeout,
            pidfd=pidfd,
        )
        sent = Outcome(f"sent {sig} to {target.name} (pid {target.pid})")
        log.info(
            "%s: %s; sent %s to %s (pid %d) in %.0f ms%s",
            self.name,
            changed,
            sig,
            target.name,
            target.pid,
            took,
            waiting,
            extra=sent.log,
        )
        return sent


class PidfileAction(SignalAction):
    """The signal action, to the PID in a pidfile."""

    action: PidfileSettings

    def __init__(self, action: PidfileSettings, ctx: Context) -> None:
        super().__init__(action, ctx)

    def resolve(self, cancel: threading.Event) -> Target:
        """Read and validate the pidfile, waiting up to `pidfile_wait` for one to appear; the
        target comes with a pidfd open on it where the system has pidfds (the caller closes it)."""
        deadline = time.monotonic() + self.action.pidfile_wait
        while True:
            got = trust.read_pidfile(self.action.pidfile)
            if got is not None:
                pidfd = open_pidfd(got.pid) if self._pidfds else None
                try:
                    target = inspect_process(got.pid, got.mtime)
                    target.pidfd = pidfd
                    return self._vetted(target, got.owner, got.why)
                except BaseException:
                    if pidfd is not None:
                        os.close(pidfd)
                    raise
            if time.monotonic() >= deadline or cancel.is_set():
                exists = self.action.pidfile.exists()
                waited = f"waited {self.action.pidfile_wait:g} s"
                if exists:
                    raise ActionError(
                        f"pidfile {self.action.pidfile} is empty ({waited}; is the server starting?)"
                    )
                raise ActionError(
                    f"pidfile {self.action.pidfile} does not exist ({waited}; is the server running "
                    "and writing it, e.g. gunicorn --pid FILE?)"
                )
            cancel.wait(_RETRY_EVERY)


class ProcessAction(SignalAction):
    """The signal action, to the one process of a name (`watchd.actions.byname` finds it)."""

    action: ProcessSettings
    names_another = "process: names another"

    def __init__(self, action: ProcessSettings, ctx: Context) -> None:
        super().__init__(action, ctx)

    def resolve(self, cancel: threading.Event) -> Target:
        """The one process of the name among the user's, found now. Its identity is its PID and
        start time as listed: the pidfd opened next, and every check after, must show the same."""
        name = self.action.process
        user = byname.searched_user(self.action.process_user)
        found = byname.find(name, user.uid)
        if not found:
            raise ActionError(
                f"no process named {name!r} among {user.whose} processes (is it running, as that "
                "user? in Kubernetes, with shareProcessNamespace: true?)"
            )
        if len(found) > 1:
            listed = "; ".join(f"pid {p.pid}: {p.cmdline[:60]!r}" for p in found[:5])
            more = f"; and {len(found) - 5} more" if len(found) > 5 else ""
            raise ActionError(
                f"{len(found)} processes named {name!r} among {user.whose} processes ({listed}{more}): "
                "refused, a signal goes to one (name it more closely with the next words of its "
                "command line, or set expect:)"
            )
        (one,) = found
        if one.pid == 1:  # as a pidfile's PID 1: a PID namespace's init, whose signals are its own
            raise ActionError(
                f"the process named {name!r} is PID 1 (init of this PID namespace): refused, as from a "
                "pidfile (in Kubernetes: shareProcessNamespace: true gives the app another PID)"
            )
        pidfd = open_pidfd(one.pid) if self._pidfds else None
        try:
            target = inspect_process(one.pid)
            target.pidfd = pidfd
            if target.started != one.started:
                raise ActionError(
                    f"PID {one.pid} ({one.comm}) exited, and its PID went to another process, while "
                    "it was being checked: not signalled"
                )
            return self._vetted(target, user.uid, f"process: looks among {user.whose} processes")
        except BaseException:
            if pidfd is not None:
                os.close(pidfd)
            raise
