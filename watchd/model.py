"""The settings model: what a config file or a command line resolves to.

Frozen, slotted dataclasses with every default defined once, here. This is a leaf module: the
parser (`config`) builds these, and everything downstream (the daemon, the watcher, the actions)
reads them without pulling in the parser. Each action's settings are named for its kind
(`PidfileSettings`) and carried out by the action of the same name (`actions.pidfile.PidfileAction`).
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal

from watchd.logtext import describe_command, format_duration, shown_url, signal_name

# Defaults: the single place they are defined.
DEFAULT_DEBOUNCE = 0.05  # quiet period, as watchexec
DEFAULT_MAX_DELAY = 2.0  # act at the latest this long after a batch's first event
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_PIDFILE_WAIT = 2.0  # gunicorn's USR2 upgrade leaves ~150 ms without a pidfile
DEFAULT_SIGNAL = int(_signal.SIGHUP)
DEFAULT_CONFIRM_TIMEOUT = 10.0  # how long a pre-fork server may take to replace its workers
DEFAULT_READY_TIMEOUT = 30.0  # how long the next app may take to serve before the running one is kept
DEFAULT_CHECK_TIMEOUT = 60.0
PYTHON_CHECK = "python"  # `check: python`: the built-in check, not a command
DEFAULT_STOP_SIGNAL = int(_signal.SIGTERM)
DEFAULT_STOP_TIMEOUT = 5.0  # then KILL the process group (watchfiles: 5 s, watchexec: 10 s)
DEFAULT_HTTP_TIMEOUT = 5.0  # connect and each read of a post action's request
DEFAULT_TRIES = 3  # a post action's attempts, on connection errors and 5xx answers

KILL_WAIT = 2.0  # after SIGKILL, how long to wait for the group to vanish before saying so


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where to listen: TCP host and port, or a Unix socket path. `text` is as written."""

    text: str
    host: str = ""  # TCP: an IP address or a name; empty for unix
    port: int = 0  # 0: the kernel picks a free port (logged at start)
    path: str = ""  # unix:/path
    where: str = field(default="", compare=False)  # "dev.yaml:9:13: watches.web.listen", for errors

    @property
    def is_unix(self) -> bool:
        return bool(self.path)

    def describe(self) -> str:
        if self.is_unix:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class OnBusy(StrEnum):
    """What a command watch does with changes that arrive while its command runs."""

    QUEUE = "queue"  # run once more afterwards, with everything that changed meanwhile
    IGNORE = "ignore"  # drop them
    RESTART = "restart"  # stop the running command (its process group) and start again


class OnExit(StrEnum):
    """What a run watch does when its app exits by itself (not stopped by watchd)."""

    WAIT = "wait"  # wait for the next change (a syntax error at start is fixed by saving)
    RESTART = "restart"  # start it again, with backoff
    STOP = "stop"  # end watchd with the app's exit status (one-shot tools)


class Poll(StrEnum):
    """How a watch's roots are watched: native events, or polling."""

    AUTO = "auto"  # native events, but poll a root on a filesystem where changes made elsewhere raise none
    ALWAYS = "true"  # poll every root
    NEVER = "false"  # native events everywhere (a warning for a network filesystem)


class Preload(StrEnum):
    """Whether a run watch restarts a Python app by forking a server that imported its stable modules."""

    AUTO = "auto"  # for a Python app, once it has run: warm restarts (falls back to cold, saying why)
    OFF = "off"  # every start is a new interpreter


class Body(StrEnum):
    """What a post action sends in its request body."""

    CHANGES = "changes"  # the batch as JSON: the watch, the count, each change's kind and paths


class ListenEnv(StrEnum):
    """Extra variables for apps that take a listening socket their own way."""

    WERKZEUG = "werkzeug"  # WERKZEUG_SERVER_FD=3, WERKZEUG_RUN_MAIN=true (flask run --no-reload)


@dataclass(frozen=True, slots=True)
class Stop:
    """How watchd stops a process group: `signal`, then KILL after `timeout` seconds."""

    signal: int = DEFAULT_STOP_SIGNAL
    timeout: float = DEFAULT_STOP_TIMEOUT

    @property
    def grace(self) -> float:
        """The longest a stop may take: the signal's timeout, then KILL and the wait for the group."""
        return self.timeout + KILL_WAIT

    def describe(self) -> str:
        return f"{signal_name(self.signal)}, KILL after {format_duration(self.timeout)}"


@dataclass(frozen=True, slots=True)
class PidfileSettings:
    """Send `signal` to the process whose PID is in `pidfile` (re-read at every trigger)."""

    kind: ClassVar[str] = "pidfile"
    pidfile: Path
    signal: int = DEFAULT_SIGNAL
    expect: str | None = None  # text that must appear in the target's command line
    pidfile_wait: float = DEFAULT_PIDFILE_WAIT
    confirm: bool = True  # follow the target's children until the workers are replaced
    confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT
    unit: str | None = None  # the target must be in this systemd unit's cgroup

    def describe(self) -> str:
        return f"send {signal_name(self.signal)} to the PID in {self.pidfile}" + _target_rules(
            self.expect, self.unit
        )


def _target_rules(expect: str | None, unit: str | None) -> str:
    """What the signal action's target must also be, for --validate: both targets say it alike."""
    text = f" (command line must contain {expect!r})" if expect else ""
    return text + (f" (in unit {unit})" if unit else "")


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    """Send `signal` to the one process named `process`, found among a user's processes at every
    trigger (no pidfile: a shared process namespace). The signal action, as `PidfileSettings`."""

    kind: ClassVar[str] = "process"
    process: str  # its executable's name, or the start of its command line ("gunicorn -c api.py")
    signal: int = DEFAULT_SIGNAL
    expect: str | None = None  # text that must appear in the target's command line
    confirm: bool = True  # follow the target's children until the workers are replaced
    confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT
    unit: str | None = None  # the target must be in this systemd unit's cgroup
    process_user: int | None = None  # the UID whose processes are searched (root only); None: watchd's

    def describe(self) -> str:
        whose = f"uid {self.process_user}'s" if self.process_user is not None else "watchd's user's"
        sig = signal_name(self.signal)
        text = f"send {sig} to the one process named {self.process!r} among {whose} processes"
        return text + _target_rules(self.expect, self.unit)


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """A gate run before the action (e.g. `python -m compileall -q src`): if it fails, no action."""

    command: str | tuple[str, ...]
    cwd: Path
    timeout: float = DEFAULT_CHECK_TIMEOUT

    def describe(self) -> str:
        return f"{describe_command(self.command)} in {self.cwd}, timeout {format_duration(self.timeout)}"


@dataclass(frozen=True, slots=True)
class PythonCheckSettings:
    """`check: python`: compile the batch's changed .py files in watchd's own interpreter."""

    def describe(self) -> str:
        return "python: compile the changed .py files in-process (watchd's Python syntax)"


@dataclass(frozen=True, slots=True)
class CommandSettings:
    """Run a command: a string runs with /bin/sh -c, a sequence runs without a shell."""

    kind: ClassVar[str] = "command"
    command: str | tuple[str, ...]
    cwd: Path
    timeout: float | None = None
    on_busy: OnBusy = OnBusy.QUEUE
    stop: Stop = Stop()
    clear: bool = False  # clear the terminal before each run (when stdout is one)
    run_at_start: bool = False  # also run once at start (an empty batch, WATCHD_TRIGGER=start)
    prefix: bool = True  # its output's lines start with [watch] when several watches share a terminal

    def describe(self) -> str:
        text = f"run {describe_command(self.command)} in {self.cwd}"
        if self.run_at_start:
            text += ", once at start"
        if self.timeout is not None:
            text += f", timeout {format_duration(self.timeout)}"
        if self.clear:
            text += ", clearing the screen first"
        return text + f", on busy: {self.on_busy.value}"


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Run an app as watchd's child from the start, and restart it when its files change."""

    kind: ClassVar[str] = "run"
    command: str | tuple[str, ...]
    cwd: Path
    stop: Stop = Stop()
    on_exit: OnExit = OnExit.WAIT
    reload: int | None = None  # reload the app with this signal instead of restarting it
    restart_patterns: tuple[str, ...] = ()  # ... except for these files: restart it
    confirm: bool = True  # with reload: follow the app's workers until they are replaced
    confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT
    listen: ListenAddress | None = None  # watchd holds this socket and passes it as fd 3
    listen_env: ListenEnv | None = None
    # with listen: the next app serves by then, or is dropped (off, None: it starts after the old one stopped)
    ready_timeout: float | None = DEFAULT_READY_TIMEOUT
    clear: bool = False  # clear the terminal before each start (when stdout is one)
    watch_imports: bool = False  # also watch the files of the modules the (Python) app imported
    preload: Preload = Preload.AUTO  # restart a Python app from a fork server (watchd.actions.preload)
    prefix: bool = True  # its output's lines start with [watch] when several watches share a terminal

    def describe(self) -> str:
        text = f"run and restart {describe_command(self.command)} in {self.cwd}"
        if self.reload is not None:
            sig = signal_name(self.reload)
            text = f"run {describe_command(self.command)} in {self.cwd}, reload it with {sig}"
            if self.restart_patterns:
                text += f", restart it for {', '.join(self.restart_patterns)}"
        if self.watch_imports:
            text += ", watching the files it imports"
        return text + (", clearing the screen first" if self.clear else "")


@dataclass(frozen=True, slots=True)
class PostSettings:
    """Send an HTTP request (Prometheus' /-/reload, a sidecar's reload endpoint) for a batch."""

    kind: ClassVar[str] = "post"
    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_HTTP_TIMEOUT
    tries: int = DEFAULT_TRIES
    body: Body | None = None

    def describe(self) -> str:
        text = f"{self.method} {shown_url(self.url)}"
        if self.headers:
            text += " with " + ", ".join(name for name, _ in self.headers)
        if self.body is Body.CHANGES:
            text += ", the changes as JSON"
        tries = f"{self.tries} {'try' if self.tries == 1 else 'tries'}"
        return text + f", timeout {format_duration(self.timeout)}, {tries}"


ActionSettings = PidfileSettings | ProcessSettings | CommandSettings | RunSettings | PostSettings


@dataclass(frozen=True, slots=True)
class Watch:
    """One named watch: where to look, what counts, how long to wait, what to do."""

    name: str
    paths: tuple[Path, ...]
    action: ActionSettings
    patterns: tuple[str, ...] = ()  # empty: every file
    ignore: tuple[str, ...] = ()
    ignore_defaults: bool = True
    ignore_directories: bool = False
    gitignore: bool = False  # the repository's .gitignore files, info/exclude and core.excludesFile apply
    debounce: float = DEFAULT_DEBOUNCE
    max_delay: float = DEFAULT_MAX_DELAY
    poll: Poll = Poll.AUTO
    poll_interval: float = DEFAULT_POLL_INTERVAL
    check: CheckSettings | PythonCheckSettings | None = None
    env: tuple[tuple[str, str], ...] = ()  # variables for its commands, apps and checks
    env_file: Path | None = None  # a dotenv file read at every run (its values after os.environ, before env)
    content: bool = False  # a file whose bytes are as they were at the last action does not count

    @property
    def counted_patterns(self) -> tuple[str, ...]:
        """The patterns of the files that count: `patterns` (empty: every file), with a run watch's
        restart_patterns, which count whatever the patterns say."""
        action = self.action
        if self.patterns and isinstance(action, RunSettings) and action.reload is not None:
            return self.patterns + tuple(p for p in action.restart_patterns if p not in self.patterns)
        return self.patterns


class LogFormat(StrEnum):
    """How watchd writes its log (`log_format:`, --log-format)."""

    HUMAN = "human"  # lines for people
    JSON = "json"  # one JSON object per line (see watchd.logformat)


@dataclass(frozen=True, slots=True)
class Config:
    """The watches, and the settings of watchd itself (the top-level keys of schema.TOP_KEYS)."""

    watches: tuple[Watch, ...]
    source: Path | None = None  # the config file, None for a command-line watch
    metrics: ListenAddress | None = None  # serve /metrics and /healthz here
    log_format: LogFormat = LogFormat.HUMAN
    # the control socket: None for the default place (see watchd.control), False for none
    control: Path | Literal[False] | None = None
    interactive: bool = False  # read keys from the terminal (r, p, q, c, ?)
