"""The run action: watchd runs the app itself and restarts it when its files change.

The job of Tornado's autoreload, Werkzeug's and Django's reloaders, uvicorn --reload and hupper,
from outside the app. The app is a small state machine driven on its watch's thread:

    start()          -> running             (or: could not start -> as an exit with status 127)
    execute(batch)   -> [check passed] stop the group, wait until it is gone, start -> running
    prepare(batch)   -> (with a listener) the next app starts early on a socket of its own;
                        execute() then only steers connections to it and stops the old one
    the app exits    -> on_exit: wait (for the next change) | restart (with backoff) | stop (watchd)
                        exit status 3 restarts at once (Werkzeug's and Django's convention)
    close(deadline)  -> stop the group -> closed

Everything that happens to the app from other threads (its exit, seen by the waiter thread;
the keyboard's Ctrl-C, seen through the terminal sentinel) is posted to the watch's thread as a
job carrying the `Child` it is about: a job about a child that is no longer current is stale
and ignored. That is how a restart racing the old app's own exit stays one restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import IO, TYPE_CHECKING

from watchd.actions import Context
from watchd.actions.imports import ImportReports
from watchd.actions.preload import NotPython, Preloader, Unsupported, Warm, cache_file, python_entry
from watchd.actions.process import (
    DRAIN_MAX,
    Child,
    Drain,
    ListFile,
    StopDenied,
    Stopped,
    batch_environment,
    child_environment,
    clear_screen,
    describe_status,
    shell_status,
    spawn,
)
from watchd.actions.pysource import invalidate_bytecode
from watchd.actions.reload import Reload
from watchd.changes import Batch, display_path
from watchd.logtext import command_for_log
from watchd.model import KILL_WAIT, ListenEnv, OnBusy, OnExit, Preload, RunSettings, Stop
from watchd.outcome import Outcome, Result
from watchd.readiness import FAILED, HTTP_PROBE, Readiness, open_notify_socket
from watchd.sockets import SD_LISTEN_FDS_START, Listener, queued

if TYPE_CHECKING:
    import socket

    from watchd.terminal import Terminal

log = logging.getLogger(__name__)

RESTART_REQUESTED = 3  # the exit status with which Werkzeug's and Django's children ask for a restart
NOT_STARTED = 127  # as a shell reports a command it could not run
# With a listener, the next app starts once the files have been quiet this long (editors write a
# save in one to a few quick steps), while the watch's debounce runs; it gets connections only if
# nothing changed before the debounce ended.
PRESTART_QUIET = 0.01
# After the switch, how long the running app's queue must stay empty before it is stopped: clients
# that had sent their SYN to its socket complete the handshake there within a round trip.
HANDSHAKE_SETTLE = 0.02
HOOK_WAIT = 3.0  # an app that has not said hello by then did not load the import hook
READY_POLL = 0.002  # how often the next app's accept queue is looked at while it boots

# Moves the listening socket from stdin (where Popen can put it) to fd 3 (where the
# socket-activation protocol says it is), gives the app its real stdin ($1), and sets LISTEN_PID
# to the app's own PID: `exec` keeps the shell's PID for the program it runs.
_LISTEN_WRAPPER = 'exec 3<&0 0<"$1"; LISTEN_PID=$$; export LISTEN_PID; shift; exec "$@"'
assert SD_LISTEN_FDS_START == 3  # the wrapper's "3"


class Backoff:
    """Delays between restarts of an app that keeps exiting: 0.5 s doubling up to 8 s.

    A run of `reset_after` seconds or more, or a restart caused by a change, starts the
    sequence again. With `at_once` (exit status 3) the first restart has no delay.
    """

    def __init__(self, first: float = 0.5, cap: float = 8.0, reset_after: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.reset_after = reset_after
        self.streak = 0

    def next(self, uptime: float, *, at_once: bool = False) -> float:
        if uptime >= self.reset_after:
            self.streak = 0
        self.streak += 1
        if at_once:
            if self.streak == 1:
                return 0.0
            return min(self.first * 2.0 ** (self.streak - 2), self.cap)
        return min(self.first * 2.0 ** (self.streak - 1), self.cap)

    def reset(self) -> None:
        self.streak = 0


@dataclass(eq=False)
class _Early:
    """The next app, started on a socket no connection goes to yet: ahead of its batch
    (`prepare`, during the debounce), or by `execute`; it takes over once it is ready."""

    child: Child
    sock: socket.socket
    last_at: float  # the batch it started for: a batch with more changes is another one
    count: int
    readiness: Readiness
    started: float  # time.monotonic() at its start: ready_timeout counts from here
    prepared: bool  # started by `prepare`, while the debounce ran
    retiring: socket.socket | None = None  # the running app's socket, once connections moved
    alone: bool = False  # taken as ready because the running app had exited meanwhile


class _Wait(Enum):
    """How the wait for the next app's readiness ended."""

    READY = "ready"
    EXITED = "exited"
    TIMED_OUT = "timed out"
    BROKEN = "broken"  # it answered the HTTP probe with a 500: it serves only its import error
    SUPERSEDED = "superseded"  # files changed again: the next batch starts a newer app
    CANCELLED = "cancelled"


class RunAction:
    """The run action."""

    on_busy = OnBusy.QUEUE  # changes during a restart: one more restart afterwards, never lost
    not_done = "not restarted"

    def __init__(self, action: RunSettings, ctx: Context) -> None:
        self.name = ctx.name
        self.environment = ctx.environment
        self.action = action
        self.ctx = ctx
        self.grace = action.stop.grace
        self.shown = command_for_log(action.command)
        self.child: Child | None = None
        self.starts = 0  # WATCHD_RESTARTS is this minus one
        self.last_exit: str | None = None
        self.backoff = Backoff()
        self._gen = 0  # which start a posted job is about
        self._closed = False
        self._list_files: dict[Child, ListFile] = {}  # each app's WATCHD_CHANGED_FILE
        self._early: _Early | None = None
        self._sends_ready = False  # an app of this watch sent READY=1: without a probe, wait for it
        # The keyboard goes to one app only: the first run watch that claims the terminal.
        self.terminal = ctx.terminal if ctx.terminal is not None and ctx.terminal.claim(self.name) else None
        # Bound now, before anything starts: an address in use is a start-up error.
        self.listener: Listener | None = None
        if action.listen is not None and not ctx.dry_run:
            assert ctx.listeners is not None
            self.listener = ctx.listeners.acquire(action.listen)
        self.preloader: Preloader | None = None
        self.cold: str | None = None  # why every start is cold, when no fork server can serve it
        if action.preload is Preload.AUTO and not ctx.dry_run:
            self.preloader = self._preloader()
        self.imports: ImportReports | None = None
        watching = action.watch_imports and ctx.watch_files is not None
        if (watching or self.preloader is not None) and not ctx.dry_run:
            try:
                self.imports = ImportReports(self.name, self._imported)
            except BaseException:  # nobody will close a half-built action: give the socket back
                if self.listener is not None and ctx.listeners is not None:
                    ctx.listeners.release(self.listener)
                raise
        self._hook_checked = False
        # reload: SIGNAL: a batch signals the running app instead of restarting it
        self.reload = Reload(self.name, action, ctx.roots, ctx.tally) if action.reload is not None else None
        if self.reload is not None:
            self.not_done = f"not reloaded ({self.reload.signame}) or restarted"

    def _preloader(self) -> Preloader | None:
        """The fork server's side of this watch, for a Python app (else why its starts are cold)."""
        ctx = self.ctx
        if ctx.spawn is not None or ctx.post is None or ctx.post_later is None:
            self.cold = "watchd starts the app its own way here"
            return None
        try:
            entry = python_entry(self.action.command, self.action.cwd, {**os.environ, **self._watch_env()})
        except NotPython as exc:
            self.cold = f"not a Python app ({exc})"
            return None
        except Unsupported as exc:
            self.cold = str(exc)
            log.info("%s: restarts start a new interpreter (cold): %s", self.name, exc)
            return None
        return Preloader(
            self.name,
            entry,
            self.action.cwd,
            counts=ctx.counts or (lambda _path: False),
            post=ctx.post,
            post_later=ctx.post_later,
            environment=self._server_environment,
            terminal=self.terminal is not None,
            cache=cache_file(self.name, self.action.command, self.action.cwd),
        )

    def _imported(self, files: list[str]) -> None:
        """The import hook's reader thread: files the app imported."""
        if self.action.watch_imports and self.ctx.watch_files is not None:
            self.ctx.watch_files(files)
        if self.preloader is not None:
            self.preloader.noted(files)

    def _watch_env(self) -> dict[str, str]:
        """The watch's own variables (env_file, env) as a start now gets them."""
        return dict(self.environment.values()) if self.environment else {}

    def _server_environment(self) -> dict[str, str]:
        """The fork server's environment: the app's, without what differs per start."""
        env = child_environment(self.name, Batch(self.name, (), 0.0, 0.0), None, self._watch_env())
        env["WATCHD_RESTARTS"] = str(self.starts)
        if self.imports is not None:
            self.imports.environment(env)
        if self.action.listen_env is ListenEnv.WERKZEUG:
            env["WERKZEUG_RUN_MAIN"] = "true"
        return env

    @property
    def early(self) -> float | None:
        """Prepare the next app once the files are quiet this long: with a listener that can
        have a second socket, and no terminal (only one app can have the keyboard)."""
        if (
            self.listener is None
            or not self.listener.steerable
            or self.terminal is not None
            or self.action.ready_timeout is None  # off: the next app starts after the running one stopped
        ):
            return None
        return PRESTART_QUIET

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.ctx.dry_run:
            log.info("%s: would start %s [dry run]", self.name, self.shown)
            return
        child = self._launch(Batch(self.name, (), 0.0, 0.0))
        if child is not None:
            self._became_current(child)
            log.info("%s: started %s (pid %d)", self.name, self.shown, child.pid)

    def status(self) -> str | None:
        restarts = f", {self.starts - 1} restart{'s' if self.starts != 2 else ''}" if self.starts > 1 else ""
        child = self.child
        if child is not None:
            return f"{self.name}: pid {child.pid}{restarts}"
        if self.last_exit:
            return f"{self.name}: {self.last_exit}{restarts}"
        return None

    def prepare(self, batch: Batch, cancel: threading.Event) -> None:
        """Files changed and went quiet for PRESTART_QUIET: start the next app now, on the
        listener's next socket (no connection goes there yet), while the debounce runs;
        `execute` switches to it if nothing changed after this batch."""
        self._discard_early()
        if self.reload is not None and self.reload.restarting(batch) is None:
            return  # a reload by signal starts nothing
        if self.early is None or self.child is None or self._closed or self.ctx.dry_run or cancel.is_set():
            return
        self._early = self._start_next(batch, prepared=True)
        if self._early is not None:
            log.debug("%s: started the next %s early (pid %d)", self.name, self.shown, self._early.child.pid)

    def forget(self) -> None:
        """The batch `prepare` saw will not be carried out (its check failed): drop the early app."""
        self._discard_early()

    def execute(self, batch: Batch, cancel: threading.Event) -> str | None:
        changed = batch.what(self.ctx.base)
        if self.ctx.dry_run:
            would = "would restart"
            if self.reload is not None and self.reload.restarting(batch) is None:
                would = f"would reload ({self.reload.signame})"
            log.info("%s: %s; %s %s [dry run]", self.name, changed, would, self.shown)
            return f"{would} {self.shown}"
        if self.reload is not None and self.child is not None:
            restart_for = self.reload.restarting(batch)
            if restart_for is None:
                reloaded = self.reload.send(self.child, batch, changed)
                if reloaded is not None:
                    self._discard_early()
                    return reloaded
            else:
                shown = display_path(restart_for, self.ctx.base)
                log.info(
                    "%s: %s matches restart_patterns: restarting the app, not reloading it", self.name, shown
                )
        early = self._take_early(batch)
        if early is None and self.early is not None and self.child is not None and not cancel.is_set():
            early = self._start_next(batch, prepared=False)  # it takes over once it serves, too
        if early is not None:
            try:
                waited = self._await_ready(early, cancel, batch)
                if waited is _Wait.READY:
                    waited = self._switch_to(early)
            except BaseException:  # nothing else knows of it: stop it before the error goes on
                self._discard(early)
                raise
            if waited is not _Wait.READY:
                return self._not_taken_over(early, waited, changed)
            retiring = early.retiring
            if retiring is None and self.listener is not None and self.child is not None:
                self._discard(early)  # no second socket after all: start on the current one
                early = None
        else:
            retiring = self._switch(None)
        old = self.child
        stopped: Stopped | None = None
        if old is not None:
            try:
                stopped = old.stop(self.action.stop, self._drain())
            except StopDenied as exc:
                if retiring is not None and self.listener is not None:
                    self.listener.take_back(retiring)
                if early is not None:
                    self._discard(early)
                failed = Outcome(f"not restarted: {exc}", Result.FAILED)
                log.error(
                    "%s: %s; %s not restarted: %s", self.name, changed, self.shown, exc, extra=failed.log
                )
                return failed
            self.child = None
            self._ended(old)
        if retiring is not None and self.listener is not None:
            self.listener.retire(retiring)
        self.backoff.reset()
        if early is not None:
            # switched to already: it is the app now, also if watchd is stopping (close stops it)
            child: Child | None = early.child
            early.readiness.close()
            self.starts += 1
        elif cancel.is_set() or self._closed:
            return None
        else:
            invalidate_bytecode(batch.paths)
            child = self._launch(batch)
        if child is None:
            return Outcome(f"could not start {self.shown}", Result.FAILED)
        self._became_current(child)
        if old is None or stopped is None:
            started = Outcome(f"started (pid {child.pid})")
            log.info(
                "%s: %s; started %s (pid %d)", self.name, changed, self.shown, child.pid, extra=started.log
            )
            return started
        restarted = Outcome(f"restarted (pid {child.pid})")
        log.info(
            "%s: %s; restarted %s: pid %d stopped (%s%s) in %.2f s, new pid %d%s",
            self.name,
            changed,
            self.shown,
            old.pid,
            stopped.status(),
            ", KILLed after the stop timeout" if stopped.killed else "",
            stopped.took,
            child.pid,
            _how_started(early),
            extra=restarted.log,
        )
        if stopped.lingering:
            log.warning(
                "%s: processes of pid %d's group outlived SIGKILL (uninterruptible sleep?)",
                self.name,
                old.pid,
            )
        return restarted

    def close(self, deadline: float) -> None:
        self._closed = True
        self._discard_early()
        child, self.child = self.child, None
        try:
            if child is not None:
                try:
                    stopped = child.stop(self.action.stop, self._drain())
                    log.info(
                        "%s: stopped %s (pid %d): %s in %.2f s",
                        self.name,
                        self.shown,
                        child.pid,
                        stopped.status(),
                        stopped.took,
                    )
                except StopDenied as exc:
                    log.error("%s: could not stop %s (pid %d): %s", self.name, self.shown, child.pid, exc)
                self._ended(child)
        finally:
            for listed in self._list_files.values():
                listed.discard()
            self._list_files.clear()
            if self.preloader is not None:
                self.preloader.close()
            if self.reload is not None:
                self.reload.close(deadline)
            if self.imports is not None:
                self.imports.close()
            if self.listener is not None and self.ctx.listeners is not None:
                self.ctx.listeners.release(self.listener)
                self.listener = None
            if self.terminal is not None:
                self.terminal.release(self.name)

    # ------------------------------------------------------------------ the socket

    def _switch(self, early: _Early | None) -> socket.socket | None:
        """New connections to the next app's socket (the early app's, or a fresh one); the running
        app serves what is queued on its own (at most DRAIN_MAX). Returns the running app's
        socket, to `retire` once that app is gone, or None (nothing to switch, or one shared
        socket)."""
        if self.listener is None or (early is None and self.child is None):
            return None
        # (commit fails only if steering does, which bind() tried: then one socket is shared)
        retiring = self.listener.commit(early.sock) if early is not None else self.listener.hand_over()
        if retiring is not None and self.child is not None:
            # Until its queue has stayed empty a moment: a client whose handshake began just before
            # the switch still lands there (a round trip later), and the running app must take it.
            deadline = time.monotonic() + DRAIN_MAX
            empty_since: float | None = None
            while (now := time.monotonic()) < deadline:
                if early is not None and early.child.done.is_set():
                    break  # the new app died as it took over: _switch_to gives the socket back
                if queued(retiring):
                    empty_since = None
                elif empty_since is None:
                    empty_since = now
                elif now - empty_since >= HANDSHAKE_SETTLE:
                    break
                time.sleep(0.002)
        return retiring

    def _switch_to(self, early: _Early) -> _Wait:
        """Move new connections to a ready next app. READY, or EXITED if it died meanwhile (it
        may accept the probe and die at once): connections then go back to the running app."""
        retiring = self._switch(early)
        if retiring is None:  # its socket could not be switched to: start on the current one
            return _Wait.READY
        early.retiring = retiring
        if early.child.done.is_set() and self.child is not None and self.listener is not None:
            self.listener.take_back(retiring)
            early.retiring = None
            return _Wait.EXITED
        return _Wait.READY

    def _drain(self) -> Drain | None:
        """With a listener, a stop waits for the app to hold no accepted connection."""
        if self.listener is None:
            return None
        if self.listener.address.is_unix:
            return Drain(path=self.listener.address.path)
        return Drain(port=self.listener.port)

    # ------------------------------------------------------------------ the early app

    def _take_early(self, batch: Batch) -> _Early | None:
        """The early app, if `batch` is the one it was started for (nothing changed after it);
        one that changes made stale is discarded."""
        early, self._early = self._early, None
        if early is None:
            return None
        if batch.last_at != early.last_at or len(batch.changes) < early.count:
            # (a batch that carried an abandoned one into it has more changes, and the same end)
            log.debug(
                "%s: files changed after the early start of pid %d: not used", self.name, early.child.pid
            )
            self._discard(early)
            return None
        return early

    def _discard_early(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            self._discard(early)

    def _discard(self, early: _Early) -> None:
        """Stop a next app no connection went to, with its whole group: at once, it has nothing
        to finish (and a process of its group left holding its socket would stay in the
        listener's group of sockets)."""
        kill = Stop(signal.SIGKILL, KILL_WAIT)
        with contextlib.suppress(StopDenied):
            if not early.child.done.is_set():
                early.child.stop(kill)
            else:
                early.child.clean_up_group(kill)  # its leader is an unreaped zombie: the group is its own
        self._ended(early.child)
        early.readiness.close()
        if self.listener is not None:
            self.listener.drop(early.sock)
        else:
            early.sock.close()

    def _start_next(self, batch: Batch, *, prepared: bool) -> _Early | None:
        """The next app for `batch`, on the listener's next socket, with its readiness probed
        (the probe is queued before it starts, so its accept cannot be missed); None if it cannot
        have a socket of its own."""
        assert self.listener is not None
        sock = self.listener.successor()
        if sock is None:
            return None
        child: Child | None = None
        readiness: Readiness | None = None
        try:
            http = self.action.listen_env is ListenEnv.WERKZEUG
            probe = self.listener.probe(sock, HTTP_PROBE if http else b"")
            if probe is None and not self.listener.steerable:  # a stranger's socket in the group
                return None  # (dropped below)
            notify = open_notify_socket()
            readiness = Readiness(sock, probe, notify, notify_expected=self._sends_ready, http=http)
            invalidate_bytecode(batch.paths)
            extra = {"NOTIFY_SOCKET": notify.path} if notify is not None else {}
            child = self._launch(batch, sock=sock, counted=False, extra_env=extra)
        finally:
            if child is None:
                if readiness is not None:
                    readiness.close()
                self.listener.drop(sock)
        if child is None:
            return None
        return _Early(child, sock, batch.last_at, len(batch.changes), readiness, time.monotonic(), prepared)

    def _await_ready(self, early: _Early, cancel: threading.Event, batch: Batch) -> _Wait:
        """Until the next app serves (see watchd.readiness), exits, runs past ready_timeout, is
        made stale by newer changes (`batch` is then carried into them), or watchd stops.
        Meanwhile the running app serves."""
        readiness = early.readiness
        if readiness.blind:
            return _Wait.READY if not early.child.done.is_set() else _Wait.EXITED
        timeout = self.action.ready_timeout
        assert timeout is not None  # off: no next app is started beside the running one
        deadline = early.started + timeout
        log.debug(
            "%s: the running app serves until the next one (pid %d) is ready (ready_timeout %g s)",
            self.name,
            early.child.pid,
            timeout,
        )
        try:
            while True:
                if early.child.done.is_set():  # first: an app that accepted and died is not ready
                    return _Wait.EXITED
                how = readiness.check()
                if how == FAILED:
                    return _Wait.BROKEN
                if how is not None:
                    log.debug(
                        "%s: the next app (pid %d) is ready: it %s %.0f ms after its start",
                        self.name,
                        early.child.pid,
                        how,
                        (time.monotonic() - early.started) * 1000,
                    )
                    return _Wait.READY
                if cancel.is_set():
                    return _Wait.CANCELLED
                if self.ctx.give_way is not None and self.ctx.give_way(batch):
                    return _Wait.SUPERSEDED
                old = self.child
                if old is None or old.done.is_set():
                    early.alone = True
                    return _Wait.READY  # nothing serves meanwhile: the connections wait for it
                if time.monotonic() >= deadline:
                    return _Wait.TIMED_OUT
                readiness.wait(READY_POLL)
        finally:
            self._sends_ready = self._sends_ready or readiness.notified

    def _not_taken_over(self, early: _Early, waited: _Wait, changed: str) -> Outcome | None:
        """The next app did not take over: the running app keeps serving; say why."""
        if waited is _Wait.EXITED:
            early.child.done.wait(KILL_WAIT)  # set already: its status is known
            code = early.child.code if early.child.code is not None else NOT_STARTED
            why, detail = f"the new app {_exited_with(code)} before it was ready", ""
        elif waited is _Wait.BROKEN:
            why, detail = (
                f"the new app {FAILED} before it was ready",
                " (an error at import: see its output above)",
            )
        elif waited is _Wait.TIMED_OUT:
            sign = "accepted no connection" if early.readiness.probe is not None else "sent no READY=1"
            why = f"the new app was not ready within {self.action.ready_timeout:g} s"
            detail = f" (it {sign}; stopped it; raise ready_timeout if it needs longer)"
        else:
            self._discard(early)
            if waited is _Wait.SUPERSEDED:
                log.info(
                    "%s: %s; files changed again before the new app (pid %d) was ready: the next start "
                    "has the newer code",
                    self.name,
                    changed,
                    early.child.pid,
                )
            return None
        self._discard(early)
        old = self.child
        failed = Outcome(f"kept pid {old.pid}: {why}" if old is not None else why, Result.FAILED)
        log.warning("%s: %s; %s%s", self.name, changed, failed, detail, extra=failed.log)
        return failed

    # ------------------------------------------------------------------ starting

    def _environment(self, batch: Batch) -> tuple[dict[str, str], ListFile]:
        """The app's environment for `batch`, and its WATCHD_CHANGED_FILE (discarded when it ends)."""
        env, list_file = batch_environment(self.name, batch, self.environment.values())
        env["WATCHD_RESTARTS"] = str(self.starts)
        if self.imports is not None:
            self.imports.environment(env)
        if self.listener is not None:
            env.update(LISTEN_FDS="1", LISTEN_FDNAMES=self.name)
            env.pop("LISTEN_PID", None)  # the wrapper sets it to the app's PID
            if self.action.listen_env is ListenEnv.WERKZEUG:
                env.update(WERKZEUG_SERVER_FD=str(SD_LISTEN_FDS_START), WERKZEUG_RUN_MAIN="true")
        return env, list_file

    def _launch(
        self,
        batch: Batch,
        *,
        sock: socket.socket | None = None,
        counted: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> Child | None:
        """Start the app (on `sock`, else the listener's socket). A start that fails is logged and,
        unless it is an early one, treated as an exit with status 127."""
        self._gen += 1
        terminal = self.terminal if sock is None else None
        argv: list[str] | None = None
        stdin_fd: int | None = None
        if self.listener is not None:
            from watchd.actions.process import argv_for  # noqa: PLC0415

            stdin = "/dev/tty" if terminal is not None else os.devnull
            argv = ["/bin/sh", "-c", _LISTEN_WRAPPER, "watchd", stdin, *argv_for(self.action.command)]
            stdin_fd = sock.fileno() if sock is not None else self.listener.fileno()
        start = self.ctx.spawn or spawn
        if self.action.clear:
            clear_screen()
        env, list_file = self._environment(batch)
        env.update(extra_env or {})
        pass_fds = list_file.pass_fds + ((self.imports.fd,) if self.imports is not None else ())
        # several watches share the terminal: its output through a pipe, [name] before each line
        piped = self.ctx.output.pipe(prompts=terminal is not None) if self.ctx.output is not None else None
        if piped is not None:
            env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            output = piped.file if piped is not None else None
            child = self._fork(env, terminal, sock, pass_fds, output)
            if child is None:
                child = start(
                    self.action.command,
                    cwd=self.action.cwd,
                    env=env,
                    terminal=terminal,
                    stdin_fd=stdin_fd,
                    argv=argv,
                    on_exit=self._exited,
                    on_terminal_signal=self._keyboard,
                    pass_fds=pass_fds,
                    output=output,
                )
        except OSError as exc:
            log.error(
                "%s: could not start %s: %s (check the command and cwd %s)",
                self.name,
                self.shown,
                exc.strerror or exc,
                self.action.cwd,
            )
            list_file.discard()
            if counted:
                self._after_exit(None, NOT_STARTED, 0.0)
            return None
        except BaseException:
            list_file.discard()
            raise
        finally:
            if piped is not None:
                piped.close()  # the app holds its own end
        list_file.handed_over()  # the app has its own copy of the anonymous file
        self._list_files[child] = list_file  # a temporary file goes when the app has ended
        if counted:
            self.starts += 1
        if self.imports is not None and not self._hook_checked and self.ctx.post_later is not None:
            self._hook_checked = True
            self.ctx.post_later(HOOK_WAIT, self._check_hook)
        return child

    def _fork(
        self,
        env: dict[str, str],
        terminal: Terminal | None,
        sock: socket.socket | None,
        pass_fds: tuple[int, ...],
        output: IO[bytes] | None = None,
    ) -> Child | None:
        """The app forked from the fork server (a warm start), or None: start it cold (-v says why)."""
        preloader = self.preloader
        if preloader is None:
            if self.cold is not None:
                log.debug("%s: cold: %s", self.name, self.cold)
            return None
        entry = preloader.entry
        request: dict[str, object] = {
            "cwd": str(self.action.cwd),
            "env": env,
            "argv": entry.argv,
            "orig_argv": entry.orig_argv,
            "path0": entry.path0,
            "kind": entry.kind,
            "target": entry.target,
            "terminal": terminal is not None,
            "listen": self.listener is not None,
        }
        fds: list[int] = []
        targets: list[int] = []
        if terminal is not None:
            fds.append(terminal.fd)
            targets.append(0)
        if output is not None:  # the watch's pipe (its lines prefixed), as stdout and stderr
            fds += [output.fileno(), output.fileno()]
            targets += [1, 2]
        if self.listener is not None:
            fds.append(sock.fileno() if sock is not None else self.listener.fileno())
            targets.append(SD_LISTEN_FDS_START)
        fds += pass_fds
        targets += pass_fds
        outcome = preloader.fork(request, fds, targets, self._watch_env())
        if not isinstance(outcome, Warm):
            log.debug("%s: cold: %s", self.name, outcome)
            return None
        log.debug(
            "%s: warm (fork, %d modules preloaded) in %.0f ms",
            self.name,
            outcome.modules,
            outcome.took * 1000,
        )
        return Child(
            outcome.leader, on_exit=self._exited, terminal=terminal, on_terminal_signal=self._keyboard
        )

    def _check_hook(self) -> None:
        """Once: say so if the app did not load the import hook (the globs alone restart it)."""
        if not self.action.watch_imports:
            return
        if self.imports is not None and not self.imports.loaded.is_set() and not self._closed:
            log.warning(
                "%s: %s did not load watchd's import hook (not a Python program, or python -S, -I or -E): "
                "only the watch's paths and patterns restart it",
                self.name,
                self.shown,
            )

    def _became_current(self, child: Child) -> None:
        self.child = child
        self.last_exit = None
        if self.ctx.tally is not None:
            self.ctx.tally.app_started(child.pid, self.backoff.streak, self.backoff.reset_after)
        self._status_changed()

    # ------------------------------------------------------------------ the app's own exit

    def _exited(self, child: Child) -> None:
        """The waiter thread: the app exited. Handled on the watch's thread."""
        if self.ctx.post is not None:
            self.ctx.post(lambda: self._on_exit(child))

    def _on_exit(self, child: Child) -> None:
        if child is not self.child or child.stopping or self._closed:
            return  # stopped by watchd (restart, close), or an early app: reported there
        self.child = None
        leftover: Stopped | None = None
        with contextlib.suppress(StopDenied):
            leftover = child.clean_up_group(self.action.stop)
        self._ended(child)
        assert child.code is not None
        if leftover is not None:
            log.info("%s: stopped what pid %d left running in its process group", self.name, child.pid)
        self._after_exit(child, child.code, child.uptime)

    def _after_exit(self, child: Child | None, code: int, uptime: float) -> None:
        """Apply `on_exit` to an app that ended by itself (or could not start)."""
        status = describe_status(code)
        self.last_exit = f"exited ({status})"
        self._status_changed()
        what = f"{self.shown} (pid {child.pid}) exited: {status} after {uptime:.2f} s" if child else ""
        quit_sig = self._keyboard_quit(child)
        if quit_sig is not None:
            log.info("%s: %s; Ctrl-C: stopping watchd", self.name, what or f"{self.shown} did not start")
            self._finish(128 + quit_sig)
            return
        if self.action.on_exit is OnExit.STOP:
            if child is not None:
                log.info("%s: %s; stopping watchd (on_exit: stop)", self.name, what)
            self._finish(shell_status(code))
            return
        tally = self.ctx.tally
        if code == RESTART_REQUESTED and child is not None:
            delay = self.backoff.next(uptime, at_once=True)
            if tally is not None:
                tally.app_exited(status, self.backoff.streak, restarting=True)
            self._restart_later(delay, f"{what}; restarting as asked (exit status 3)")
        elif self.action.on_exit is OnExit.RESTART:
            delay = self.backoff.next(uptime)
            if tally is not None:
                tally.app_exited(status, self.backoff.streak, restarting=True)
            self._restart_later(delay, what or f"{self.shown} did not start")
        elif child is not None:
            if tally is not None:
                tally.app_exited(status, self.backoff.streak, restarting=False)
            log.warning("%s: %s; waiting for a change to start it again", self.name, what)

    def _restart_later(self, delay: float, what: str) -> None:
        gen = self._gen
        restart = {"watchd": {"event": "restart", "delay": delay}}
        if delay <= 0:
            log.warning("%s: %s", self.name, what, extra=restart)
        else:
            log.warning("%s: %s; starting it again in %.1f s", self.name, what, delay, extra=restart)
        if self.ctx.post_later is not None:
            self.ctx.post_later(delay, lambda: self._restart_due(gen))

    def _restart_due(self, gen: int) -> None:
        if gen != self._gen or self.child is not None or self._closed:
            return  # a change restarted it meanwhile
        child = self._launch(Batch(self.name, (), 0.0, 0.0))
        if child is not None:
            self._became_current(child)
            log.info("%s: started %s again (pid %d)", self.name, self.shown, child.pid)

    def _ended(self, child: Child) -> None:
        """After an app's group is gone: the terminal back to watchd, its list file removed."""
        if child.terminal is not None:
            child.join_sentinel(KILL_WAIT)
            child.terminal.take_back(child.pgid)
        child.reap()
        listed = self._list_files.pop(child, None)
        if listed is not None:
            listed.discard()

    def _status_changed(self) -> None:
        if self.ctx.status_changed is not None:
            self.ctx.status_changed()

    def _finish(self, code: int) -> None:
        if self.ctx.finish is not None:
            self.ctx.finish(code)

    # ------------------------------------------------------------------ the keyboard

    def _keyboard(self, child: Child, sig: int, stopped: bool) -> None:
        """The sentinel's thread: the app's group got a keyboard signal."""
        if self.ctx.post is not None:
            self.ctx.post(lambda: self._on_keyboard(child, sig, stopped))

    def _on_keyboard(self, child: Child, sig: int, stopped: bool) -> None:
        if child is not self.child or self._closed:
            return
        if stopped:
            self._suspend(child)
            return
        # Ctrl-C: if the app ends within its stop timeout, watchd ends too (see _keyboard_quit).
        # An app that goes on (pdb took the Ctrl-C) keeps running, and so does watchd, watching
        # for the next Ctrl-C.
        if self.ctx.post_later is not None:
            self.ctx.post_later(self.action.stop.timeout, lambda: self._rearm(child))

    def _rearm(self, child: Child) -> None:
        if child is self.child and not self._closed:
            child.rearm_sentinel()

    def _keyboard_quit(self, child: Child | None) -> int | None:
        """The signal of a Ctrl-C (Ctrl-\\) that ended this app, if one did."""
        if child is None or child.keyboard is None:
            return None
        pressed = child.keyboard
        sig, when = pressed
        ended = child.ended if child.ended is not None else time.monotonic()
        return sig if ended - when <= self.action.stop.timeout else None

    def _suspend(self, child: Child) -> None:
        """Ctrl-Z stopped the app's group: stop watchd too, so the shell's job control works."""
        terminal = child.terminal
        if terminal is None:
            return
        if not terminal.job_control:
            log.warning("%s: Ctrl-Z: no shell here to resume watchd with fg; the app goes on", self.name)
            child.resume()
            return
        terminal.take_back(child.pgid)
        os.kill(os.getpid(), signal.SIGSTOP)  # the shell sees its job (watchd) stop
        # `fg` or `bg` continued watchd: the app goes on too, in the foreground if watchd is
        child.resume()


def _how_started(early: _Early | None) -> str:
    if early is None:
        return ""
    took = "took over: the running app had exited" if early.alone else "took over once ready"
    if early.prepared:
        return f" (started early, during the debounce; {took})"
    return f" ({took})"


def _exited_with(code: int) -> str:
    """'exited with status 1', 'was killed by SIGSEGV': how an app that ended by itself ended."""
    if code < 0:
        return f"was {describe_status(code)}"
    return f"exited with status {code}"
