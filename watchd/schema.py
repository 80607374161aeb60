"""Every watch key, described once.

One `Key` per key says how its value is read (a `Reader` method), which actions take it, where
it lands in the model (and so its default, taken from the model's dataclass), how the command
line spells it, and the words `--help` and the README's key table show. The config builder
(`config`), the argparse parser (`cli`) and the README's table are made from this table, so
adding a key is one entry here (and its field in `model`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from watchd.logtext import format_duration, signal_name
from watchd.model import (
    CheckSettings,
    CommandSettings,
    Config,
    ListenAddress,
    LogFormat,
    PidfileSettings,
    PostSettings,
    ProcessSettings,
    RunSettings,
    Stop,
    Watch,
)
from watchd.reader import Reader

if TYPE_CHECKING:
    from watchd.yamltree import Val

# The keys that name a watch's action: a watch has exactly one. `pidfile` and `process` are the
# signal action's two ways of finding the process to signal.
ACTION_KINDS = ("pidfile", "process", "command", "run", "post")
ALL_ACTIONS = frozenset(ACTION_KINDS)
SETTINGS: dict[str, type] = {
    "pidfile": PidfileSettings,
    "process": ProcessSettings,
    "command": CommandSettings,
    "run": RunSettings,
    "post": PostSettings,
}


class Place(Enum):
    """Where a key's value lands in the model."""

    WATCH = "watch"  # a field of Watch
    ACTION = "action"  # a field of the action's settings (PidfileSettings, ...)
    STOP = "stop"  # a field of the action's Stop
    CHECK = "check"  # a field of the check's CheckSettings


class Form(StrEnum):
    """How the command line takes a key."""

    VALUE = "value"  # --key VALUE
    SWITCH = "switch"  # --key: true
    OFF = "off"  # --no-key: false
    LIST = "list"  # --key VALUE, repeatable
    GLOBS = "globs"  # -p GLOB, repeatable, 'a;b' accepted
    CHOICE = "choice"  # --key WORD, one of the enum's values
    POSITIONAL = "positional"  # PATH ...


@dataclass(frozen=True, slots=True)
class Key:
    convert: Callable[[Reader, Val, str], object]
    help: str  # --help, and the README's "meaning" column
    type_text: str  # the README's "type" column
    example: str  # the README's "example" column (Markdown)
    place: Place = Place.WATCH
    actions: frozenset[str] = ALL_ACTIONS  # the action kinds that take it
    field: str = ""  # the model's field, when not the key's name
    shown_default: str = ""  # when the model's default does not say it ("every file")
    flags: tuple[str, ...] = ()  # the command line's spellings; () is --the-key-with-dashes
    form: Form = Form.VALUE
    metavar: str | None = None
    doc: str = ""  # more for the README than --help has room for
    flag_help: str = ""  # --help of a switch, when it says less than the key (--no-confirm: turning it off)
    positive: str = ""  # a duration that must be longer than 0s: the message ({off}: how to turn it off)
    off_flag: str = ""  # a Form.CHOICE key's switch for its "off" value (--no-preload), with flag_help


def _on(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


_CMD_RUN = _on("command", "run")
_SIGNAL = _on("pidfile", "process")  # the signal action, either way it finds its process

# The README's order: what to watch, when, then each action's keys.
KEYS: dict[str, Key] = {
    "paths": Key(
        Reader.paths,
        "directories (watched recursively) or single files; relative to the config file's directory",
        "list of strings (or one string)",
        "`[src, app.py]`",
        shown_default="required; `.` on the command line",
        flags=("PATH",),
        form=Form.POSITIONAL,
        doc="a path that does not exist yet is a warning: it is watched when it appears",
    ),
    "patterns": Key(
        Reader.patterns,
        "gitignore-style patterns of the files that count, relative to each path",
        "list of globs",
        '`["*.py", "src/**/*.html"]`',
        shown_default="every file",
        flags=("-p", "--pattern"),
        form=Form.GLOBS,
        metavar="GLOB",
        doc="`*.py` at any depth, a leading or inner `/` anchors, `**` spans directories, `!pat` re-excludes",
    ),
    "ignore": Key(
        Reader.patterns,
        "patterns of files and directories that never count, added to the built-in ignores",
        "list of globs",
        '`["tests/**", "build/"]`',
        shown_default="`[]`",
        flags=("-i", "--ignore"),
        form=Form.GLOBS,
        metavar="GLOB",
    ),
    "ignore_defaults": Key(
        Reader.boolean,
        "apply the built-in ignores (VCS directories, caches, virtual environments, editor files)",
        "bool",
        "`false`",
        flags=("--no-default-ignores",),
        form=Form.OFF,
        flag_help="do not ignore VCS directories, caches, virtual environments, editor files by default",
    ),
    "ignore_directories": Key(
        Reader.boolean,
        "changes to directories themselves (deleting or moving one) never count",
        "bool",
        "`true`",
        form=Form.SWITCH,
    ),
    "gitignore": Key(
        Reader.boolean,
        "files the repository's .gitignore, info/exclude and core.excludesFile ignore do not count",
        "bool",
        "`true`",
        doc='see "Respecting .gitignore"',
        form=Form.SWITCH,
    ),
    "content": Key(
        Reader.boolean,
        "a file whose bytes are what they were at the last action does not count (touch, a save "
        "without edits, a git checkout back to the same content)",
        "bool",
        "`true`",
        form=Form.SWITCH,
        doc='see "What counts as a change"',
    ),
    "debounce": Key(
        Reader.duration, "act once the watch has been quiet this long", "duration", "`200ms`", metavar="DUR"
    ),
    "max_delay": Key(
        Reader.duration,
        "act at the latest this long after the batch's first change, even if changes continue",
        "duration",
        "`5s`",
        metavar="DUR",
        positive="must be longer than 0s (the longest a batch may wait, e.g. 2s)",
    ),
    "poll": Key(
        Reader.poll,
        "poll instead of native events: true for every root; auto, only a root on a filesystem where "
        "changes made elsewhere raise no events (NFS, SMB, 9p, virtiofs, sshfs, vboxsf), saying so; "
        "false, never (a warning for such a root)",
        "`auto`, `true`, `false`",
        "`true`",
        flags=("--poll", "--debug-force-polling"),
        form=Form.SWITCH,
        flag_help="poll every root instead of native events (by default only a root on a network "
        "filesystem is polled, and the log says so)",
    ),
    "poll_interval": Key(
        Reader.duration,
        "how often to poll",
        "duration",
        "`500ms`",
        metavar="DUR",
        positive="must be longer than 0s (e.g. 1s)",
    ),
    "cwd": Key(
        Reader.path,
        "where the command, the app and the check run; it must exist",
        "path",
        "`..`",
        place=Place.ACTION,
        shown_default="the config file's directory; on the command line, the current one",
        metavar="DIR",
    ),
    "check": Key(
        Reader.check,
        "compile the changed .py files in-process (python), or run this command, first; "
        "skip the action if it fails",
        "`python`, string or list",
        "`python`",
        place=Place.CHECK,
        field="command",
        shown_default="none; `python` for a Python app's one-liner",
        metavar="CMD",
        doc='see "The check gate"',
    ),
    "check_timeout": Key(
        Reader.duration,
        "stop a command check that runs longer, and skip the action",
        "duration",
        "`2m`",
        place=Place.CHECK,
        field="timeout",
        metavar="DUR",
        positive="must be longer than 0s (e.g. 60s)",
    ),
    "env": Key(
        Reader.variables,
        "variables for the watch's commands, apps and checks, over watchd's own environment "
        "(their values never appear in logs)",
        "mapping",
        "`{DJANGO_SETTINGS_MODULE: app.settings.dev}`",
        shown_default="none",
        flags=("-E", "--env"),
        form=Form.LIST,
        metavar="KEY=VALUE",
    ),
    "env_file": Key(
        Reader.env_file,
        "a dotenv file read at every run (its variables before env's); a change to it counts "
        "whatever the patterns say",
        "path",
        "`.env`",
        metavar="FILE",
    ),
    # the signal action
    "pidfile": Key(
        Reader.path,
        "signal the PID in this file",
        "path",
        "`${XDG_RUNTIME_DIR}/gunicorn.pid`",
        place=Place.ACTION,
        actions=_on("pidfile"),
        shown_default="-",
        metavar="FILE",
    ),
    "process": Key(
        Reader.process,
        "signal the one process of this name (its executable's, or the start of its command line), "
        "found at each change, instead of a pidfile's; none or several is a refusal",
        "string",
        "`gunicorn`, `gunicorn -c api.py`",
        place=Place.ACTION,
        actions=_on("process"),
        shown_default="-",
        metavar="NAME",
        doc='a shared process namespace with no pidfile: see "Signal a process by name"',
    ),
    "signal": Key(
        Reader.signal,
        "the signal to send",
        "name or number",
        "`USR1`, `SIGUSR2`, `10`",
        place=Place.ACTION,
        actions=_SIGNAL,
        metavar="SIG",
    ),
    "expect": Key(
        Reader.expect,
        "only signal a process whose command line contains this",
        "string",
        "`gunicorn`",
        place=Place.ACTION,
        actions=_SIGNAL,
        shown_default="-",
        metavar="TEXT",
    ),
    "unit": Key(
        Reader.unit,
        "only signal a process in this systemd unit's cgroup (Linux)",
        "systemd unit name",
        "`gunicorn.service`",
        place=Place.ACTION,
        actions=_SIGNAL,
        shown_default="-",
        metavar="NAME",
        doc='system services: see "The signal action"',
    ),
    "process_user": Key(
        Reader.user,
        "look for the process among this user's processes (watchd as root; otherwise only its own "
        "user's can be signalled)",
        "user name or UID",
        "`www-data`, `65532`",
        place=Place.ACTION,
        actions=_on("process"),
        shown_default="watchd's user",
        metavar="USER",
    ),
    "pidfile_wait": Key(
        Reader.duration,
        "how long to wait for a missing or empty pidfile (servers rewrite it)",
        "duration",
        "`5s`",
        place=Place.ACTION,
        actions=_on("pidfile"),
        metavar="DUR",
    ),
    "confirm": Key(
        Reader.boolean,
        "follow the server's workers until they are replaced, to confirm the reload (run: with reload)",
        "bool",
        "`false`",
        place=Place.ACTION,
        actions=_SIGNAL | _on("run"),
        flags=("--no-confirm",),
        form=Form.OFF,
        flag_help="do not follow the server's workers to confirm the reload",
    ),
    "confirm_timeout": Key(
        Reader.duration,
        "warn if the workers are not replaced by then",
        "duration",
        "`30s`",
        place=Place.ACTION,
        actions=_SIGNAL | _on("run"),
        metavar="DUR",
        positive="must be longer than 0s (e.g. 10s), or {off}",
    ),
    # the command action
    "command": Key(
        Reader.command,
        "run this command: a string runs with /bin/sh -c, a list runs without a shell",
        "string or list",
        "`make css`, `[rsync, -a, src/, host:]`",
        place=Place.ACTION,
        actions=_on("command"),
        shown_default="-",
        flags=("-c", "--command"),
        metavar="CMD",
    ),
    "timeout": Key(
        Reader.duration,
        "stop the command (stop_signal, then KILL after stop_timeout) after this long",
        "duration",
        "`60s`",
        place=Place.ACTION,
        actions=_on("command"),
        metavar="DUR",
        positive="must be longer than 0s (or leave it out for no timeout)",
    ),
    "on_busy": Key(
        Reader.on_busy,
        "changes while the command runs: run once more afterwards with all of them (queue), "
        "drop them (ignore), or stop the run and start again (restart)",
        "`queue`, `ignore`, `restart`",
        "`restart`",
        place=Place.ACTION,
        actions=_on("command"),
        form=Form.CHOICE,
        metavar="queue|ignore|restart",
    ),
    "run_at_start": Key(
        Reader.boolean,
        "also run the command once at start (an empty batch: WATCHD_COUNT=0, WATCHD_TRIGGER=start), "
        "through the check and on_busy like any run; by default a command runs only on a change",
        "bool",
        "`true`",
        place=Place.ACTION,
        actions=_on("command"),
        form=Form.SWITCH,
        flag_help="also run the command once at start, as watchexec, entr and nodemon do (by default, "
        "as watchmedo, it runs only on a change)",
        doc='see "Coming from watchexec, entr, nodemon"',
    ),
    # the run action
    "run": Key(
        Reader.command,
        "start this app with watchd and restart it on change (or give PROGRAM ARGS after --)",
        "string or list",
        "`flask --app app run --no-reload`, `[uvicorn, app:app]`",
        place=Place.ACTION,
        actions=_on("run"),
        field="command",
        shown_default="-",
        metavar="CMD",
        doc='see "Run and restart an app"',
    ),
    "on_exit": Key(
        Reader.on_exit,
        "the app exited by itself: wait for the next change (wait), start it again with backoff "
        "(restart), or end watchd with its status (stop)",
        "`wait`, `restart`, `stop`",
        "`restart`",
        place=Place.ACTION,
        actions=_on("run"),
        form=Form.CHOICE,
        metavar="wait|restart|stop",
    ),
    "reload": Key(
        Reader.signal,
        "on a change, send this signal to the app instead of restarting it (gunicorn, uWSGI, nginx: "
        "HUP), and confirm that its workers were replaced",
        "name or number",
        "`HUP`",
        place=Place.ACTION,
        actions=_on("run"),
        shown_default="none: restart",
        flags=("--reload-signal",),
        metavar="SIG",
        doc='see "Reload the app by signal"',
    ),
    "restart_patterns": Key(
        Reader.patterns,
        "with reload: a change to a file these match restarts the app instead (what a reload does "
        "not re-read); they count whatever patterns says",
        "list of globs",
        "`[requirements.txt, gunicorn.conf.py]`",
        place=Place.ACTION,
        actions=_on("run"),
        shown_default="`[]`",
        flags=("--restart-pattern",),
        form=Form.GLOBS,
        metavar="GLOB",
    ),
    "listen": Key(
        Reader.listen,
        "hold a listening socket (PORT for 127.0.0.1:PORT, HOST:PORT, [::1]:PORT, unix:/path; port 0: "
        "any free port, logged) and pass it to every start of the app as fd 3",
        "address",
        "`127.0.0.1:8000`, `unix:/run/user/1000/app.sock`, `8000`",
        place=Place.ACTION,
        actions=_on("run"),
        metavar="ADDR",
    ),
    "listen_env": Key(
        Reader.listen_env,
        "also set WERKZEUG_SERVER_FD=3 and WERKZEUG_RUN_MAIN=true (flask run --no-reload)",
        "`werkzeug`",
        "`werkzeug`",
        place=Place.ACTION,
        actions=_on("run"),
        form=Form.CHOICE,
        metavar="werkzeug",
    ),
    "ready_timeout": Key(
        Reader.duration_or_off,
        "with listen: connections move to the next app once it serves (accepts; where that cannot "
        "be seen, sends READY=1 to NOTIFY_SOCKET); if it exits or is not serving by then, the running "
        "app is kept. off: the next app starts only once the running one has stopped (an app that "
        "cannot run twice at once: a second fixed port, a lock)",
        "duration, or `off`",
        "`2m`, `off`",
        place=Place.ACTION,
        actions=_on("run"),
        metavar="DUR|off",
        positive="must be longer than 0s (e.g. 30s), or off",
        doc='see "Restarts no client notices"',
    ),
    "watch_imports": Key(
        Reader.boolean,
        "also watch the files of the modules the Python app imports",
        "bool",
        "`true`",
        place=Place.ACTION,
        actions=_on("run"),
        shown_default="`false`; `true` for a one-liner `-- python ...` with no PATH or pattern",
        flags=("--watch-imports",),
        form=Form.SWITCH,
        doc='see "Watch what the app imports"; `--no-watch-imports` turns the one-liner\'s default off',
    ),
    "preload": Key(
        Reader.preload,
        "restart a Python app warm: fork a server that imported its stable modules (the standard library, "
        "site-packages), so only the app's own code is imported again (auto), or start a new interpreter "
        "every time (off)",
        "`auto`, `off`",
        "`off`",
        place=Place.ACTION,
        actions=_on("run"),
        form=Form.CHOICE,
        metavar="auto|off",
        off_flag="--no-preload",
        flag_help="start a new interpreter at every restart (same as --preload off)",
        doc='see "Warm restarts"; anything else than a Python app starts cold',
    ),
    # stopping a process group: command and run
    "stop_signal": Key(
        Reader.signal,
        "the signal that stops the command's or the app's process group",
        "name or number",
        "`INT`",
        place=Place.STOP,
        actions=_CMD_RUN,
        field="signal",
        metavar="SIG",
    ),
    "stop_timeout": Key(
        Reader.duration,
        "KILL the process group this long after stop_signal",
        "duration",
        "`10s`",
        place=Place.STOP,
        actions=_CMD_RUN,
        field="timeout",
        metavar="DUR",
        positive="must be longer than 0s (how long to wait before KILL, e.g. 5s)",
    ),
    "clear": Key(
        Reader.boolean,
        "clear the terminal (screen and scrollback) before each run or start, when stdout is one",
        "bool",
        "`true`",
        place=Place.ACTION,
        actions=_CMD_RUN,
        form=Form.SWITCH,
    ),
    "prefix": Key(
        Reader.boolean,
        "when several command and run watches write to one terminal, start each line of the "
        "output with the watch's name ([api] ...)",
        "bool",
        "`false`",
        place=Place.ACTION,
        actions=_CMD_RUN,
        flags=("--no-prefix",),
        form=Form.OFF,
        flag_help="never start output lines with the watch's name, even when several watches share "
        "the terminal",
        doc='see "Several watches in one terminal"',
    ),
    # the post action
    "post": Key(
        Reader.url,
        "send an HTTP request to this http:// or https:// URL",
        "URL",
        "`http://127.0.0.1:9090/-/reload`",
        place=Place.ACTION,
        actions=_on("post"),
        field="url",
        shown_default="-",
        metavar="URL",
        doc='see "The post action"',
    ),
    "method": Key(
        Reader.method,
        "the request's method",
        "HTTP method",
        "`PUT`",
        place=Place.ACTION,
        actions=_on("post"),
        metavar="METHOD",
    ),
    "headers": Key(
        Reader.headers,
        "headers of the request ('Name: value' on the command line)",
        "mapping",
        '`{Authorization: "Bearer ${TOKEN}"}`',
        place=Place.ACTION,
        actions=_on("post"),
        flags=("--header",),
        form=Form.LIST,
        metavar="'NAME: VALUE'",
        shown_default="none",
    ),
    "http_timeout": Key(
        Reader.duration,
        "connect and read timeout of each try",
        "duration",
        "`10s`",
        place=Place.ACTION,
        actions=_on("post"),
        field="timeout",
        metavar="DUR",
        positive="must be longer than 0s (e.g. 5s)",
    ),
    "tries": Key(
        Reader.tries,
        "attempts in all, on connection errors and 5xx answers (0.5 s, 1 s, 2 s ... between them)",
        "number",
        "`5`",
        place=Place.ACTION,
        actions=_on("post"),
        metavar="N",
    ),
    "body": Key(
        Reader.body,
        "send the batch as JSON (the watch, the count, each change's kind and paths)",
        "`changes`",
        "`changes`",
        place=Place.ACTION,
        actions=_on("post"),
        shown_default="empty",
        form=Form.CHOICE,
        metavar="changes",
    ),
}

WATCH_KEYS = frozenset(KEYS)
DEFAULTS_KEYS = WATCH_KEYS - ALL_ACTIONS
# Beside --config, a command-line option overrides its key in every watch of the file it applies
# to (--debounce 1s, -p '*.py', --timeout 5m ...); what makes a watch -- PATH, its action, the
# address its app listens on (one per app) -- belongs in the file.
OVERRIDE_KEYS = WATCH_KEYS - ALL_ACTIONS - {"paths", "listen"}


def field_name(key: str) -> str:
    return KEYS[key].field or key


def flags(key: str) -> tuple[str, ...]:
    spec = KEYS[key]
    return spec.flags or (f"--{key.replace('_', '-')}",)


def cli_flag(key: str) -> str:
    """The command line's main spelling of a key: --pidfile, --no-confirm, PATH."""
    return max(flags(key), key=len) if KEYS[key].form is not Form.POSITIONAL else "PATH"


def default(key: str) -> object:
    """The key's default, from the model's dataclass (MISSING for a required key)."""
    spec = KEYS[key]
    name = field_name(key)
    by_place: dict[Place, list[type]] = {
        Place.WATCH: [Watch],
        Place.STOP: [Stop],
        Place.CHECK: [CheckSettings],
        Place.ACTION: [SETTINGS[k] for k in ACTION_KINDS if k in spec.actions],
    }
    classes = by_place[spec.place]
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                return dataclasses.MISSING
    raise KeyError(f"{key}: no field {name!r} in {[c.__name__ for c in classes]}")  # a table slip


def shown(key: str) -> str:
    """The default as people read it: `50ms`, `HUP`, `true`, `queue`, none."""
    spec = KEYS[key]
    if spec.shown_default:
        return spec.shown_default
    value = default(key)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value is None:
        return "none"
    if spec.convert is Reader.duration and isinstance(value, float):
        return f"`{format_duration(value)}`"
    if spec.convert is Reader.signal and isinstance(value, int):
        return f"`{signal_name(value)}`"
    if isinstance(value, Enum):
        return f"`{value.value}`"
    return f"`{value}`"


def applies_to(key: str) -> str:
    """`command and run:` -- the README's prefix for a key that not every action takes."""
    actions = KEYS[key].actions
    if actions == ALL_ACTIONS:
        return ""
    if key in ACTION_KINDS:
        return f"**{_ACTION_NAMES.get(key, key)} action**: "
    if actions == _on("process"):
        return "signal action with process: "
    names = list(
        dict.fromkeys(
            f"{_ACTION_NAMES.get(k, k)} action" if k in _ACTION_NAMES else k
            for k in ACTION_KINDS
            if k in actions
        )
    )
    return " and ".join(names) + ": "


_ACTION_NAMES = {"pidfile": "signal", "process": "signal"}  # the signal action's two keys


def readme_table() -> str:
    """The README's key table."""
    rows = ["| key | type | default | example | meaning |", "|---|---|---|---|---|"]
    for key, spec in KEYS.items():
        meaning = applies_to(key) + spec.help + (f" ({spec.doc})" if spec.doc else "")
        rows.append(f"| `{key}` | {spec.type_text} | {shown(key)} | {spec.example} | {meaning} |")
    return "\n".join(rows) + "\n"


def help_text(key: str) -> str:
    """The option's --help: what it does, and its default where there is one worth saying."""
    spec = KEYS[key]
    if spec.form in (Form.SWITCH, Form.OFF, Form.POSITIONAL):
        return spec.flag_help or spec.help
    what = spec.help + (" (repeatable)" if spec.form in (Form.GLOBS, Form.LIST) else "")
    text = shown(key).replace("`", "")
    return what if text in ("-", "none", "required") else f"{what} (default {text})"


# --------------------------------------------------------------------------- watchd's own settings
# The top level of a config file holds, besides `watches:` and `defaults:`, a few settings of watchd
# itself (not of a watch: one value for the whole process). One `Setting` per key, as `Key` above:
# how it is read, its flag (which wins over the file), its field of `model.Config`, its words.


def _metrics(ctx: Reader, v: Val, key: str) -> ListenAddress:
    address = ctx.listen(v, key)
    if address.is_unix:
        raise ctx.error(v, key, "metrics are served over TCP: write HOST:PORT, e.g. 127.0.0.1:9385")
    return address


def _log_format(ctx: Reader, v: Val, key: str) -> LogFormat:
    return ctx._choice(v, key, LogFormat)


def _control(ctx: Reader, v: Val, key: str) -> Path | Literal[False]:
    if v.kind == "bool":
        if v.value is True:
            raise ctx.error(v, key, "write a socket path, or false for no control socket")
        return False
    if ctx.cli and ctx.string(v, key) in ("off", "none"):
        return False
    return ctx.path(v, key)


@dataclass(frozen=True, slots=True)
class Setting:
    convert: Callable[[Reader, Val, str], object]
    help: str
    type_text: str
    example: str
    metavar: str
    shown_default: str
    flags: tuple[str, ...] = ()  # the command line's spellings; () is --the-key-with-dashes
    switch: bool = False  # a flag without a value, that sets true


def _boolean(ctx: Reader, v: Val, key: str) -> bool:
    return ctx.boolean(v, key)


SETTINGS_KEYS: dict[str, Setting] = {
    "metrics": Setting(
        _metrics,
        "serve /metrics (Prometheus) and /healthz on this address (port 0: any free port, logged)",
        "address",
        "`127.0.0.1:9385`, `0.0.0.0:9385`",
        "ADDR",
        "none",
    ),
    "log_format": Setting(
        _log_format,
        "human: lines for people; json: one JSON object per line",
        "`human`, `json`",
        "`json`",
        "human|json",
        "`human`",
    ),
    "control": Setting(
        _control,
        "the control socket of watchd status/trigger/pause/resume; false (--control off): none",
        "path, or `false`",
        "`/run/watchd/api.sock`",
        "PATH",
        "`$XDG_RUNTIME_DIR/watchd/NAME-HASH.sock`",
    ),
    "interactive": Setting(
        _boolean,
        "read keys from the terminal: r acts now, p pauses and resumes, c clears, q quits, ? lists them "
        "(apps then read /dev/null: the keyboard is watchd's)",
        "bool",
        "`true`",
        "",
        "`false`",
        flags=("-I", "--interactive"),
        switch=True,
    ),
}


def setting_flags(key: str) -> tuple[str, ...]:
    return SETTINGS_KEYS[key].flags or (f"--{key.replace('_', '-')}",)


def setting_flag(key: str) -> str:
    return max(setting_flags(key), key=len)


def setting_default(key: str) -> object:
    return next(f.default for f in dataclasses.fields(Config) if f.name == key)


def readme_settings_table() -> str:
    """The README's table of watchd's own (top-level) settings."""
    rows = ["| key | flag | type | default | example | meaning |", "|---|---|---|---|---|---|"]
    for key, s in SETTINGS_KEYS.items():
        flag = "`, `".join(setting_flags(key))
        rows.append(f"| `{key}` | `{flag}` | {s.type_text} | {s.shown_default} | {s.example} | {s.help} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # the README's tables, to paste after changing a key
    print(readme_table(), end="")
    print()
    print(readme_settings_table(), end="")
