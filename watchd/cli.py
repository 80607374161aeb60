"""Command line: `watchd --config FILE` or a one-liner, and the subcommands that talk to a running
watchd (`watchd status`, `trigger`, `pause`, `resume`). The only place that sets up logging and
maps failures to exit statuses.

A first argument that is exactly a subcommand's name is that subcommand; anything else is the
daemon's command line as before. A directory named like a subcommand is watched by writing it as
a path: `watchd ./status -c make`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shlex
import shutil
import sys
import warnings
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from watchd import __version__, logformat, subcommands
from watchd.config import config_from_options, load_config, with_settings
from watchd.control import ControlError, ControlInUse, ControlServer, default_path
from watchd.daemon import Daemon, DaemonError
from watchd.errors import ConfigError, WatchFailed, one_line
from watchd.logtext import format_duration, signal_name
from watchd.matching import from_watchmedo
from watchd.model import (
    PYTHON_CHECK,
    ActionSettings,
    CommandSettings,
    Config,
    LogFormat,
    PidfileSettings,
    Poll,
    ProcessSettings,
    RunSettings,
)
from watchd.reader import Reader
from watchd.schema import (
    KEYS,
    OVERRIDE_KEYS,
    SETTINGS_KEYS,
    Form,
    Place,
    cli_flag,
    flags,
    help_text,
    setting_flags,
)
from watchd.sockets import ListenError
from watchd.systemd import Notifier, unit_file

if TYPE_CHECKING:
    from watchd.metrics import MetricsServer, Snapshot
from watchd.terminal import Terminal

log = logging.getLogger("watchd")


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1  # runtime failure: cannot watch, observer died
    USAGE = 2  # bad command line or config
    INTERRUPTED = 130  # Ctrl-C


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _Globs(argparse.Action):
    """-p / -i and watchmedo's --patterns / --ignore-patterns: 'a;b' lists, in order, into one list;
    watchmedo's globs are turned into the gitignore patterns that select the same files."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        *,
        watchmedo: bool = False,
        exts: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(option_strings, dest, **kw)
        self.watchmedo = watchmedo
        self.exts = exts  # watchexec's -e py,html: file extensions, comma-separated

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, str)
        if self.exts:
            exts = [e.strip().removeprefix(".") for e in values.split(",")]
            if not all(exts):
                raise UsageError(
                    f"{option_string} {values!r}: empty extension (write extensions like py,html)"
                )
            globs = getattr(namespace, self.dest) or []
            setattr(namespace, self.dest, globs + [f"*.{e}" for e in exts])
            return
        parts = values.split(";")
        if not all(part.strip() for part in parts):
            raise UsageError(
                f"{option_string} {values!r}: empty pattern (write a glob like *.py, or leave the option out)"
            )
        globs = getattr(namespace, self.dest) or []
        globs += [from_watchmedo(p) if self.watchmedo else p for p in parts]
        setattr(namespace, self.dest, globs)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="watchd",
        usage="watchd [PATH ...] [options] "
        "(--pidfile FILE | --process NAME | --command CMD | --run CMD | --post URL | -- PROGRAM [ARG ...])\n"
        "       watchd --config FILE [--validate] [options]\n"
        "       watchd --example [NAME]\n"
        "       watchd {status,trigger,pause,resume} ... (a running watchd: see watchd status --help)",
        description="Watch files; when they change, reload a server (signal its pidfile), run a command, "
        "or restart the app watchd runs.",
        epilog="Examples: watchd -p '*.py' --pidfile /tmp/gunicorn.pid src/ | "
        "watchd -p '*.py' -- python app.py | watchd --config dev.yaml. "
        "Exit status: 0 stopped, 1 failure, 2 usage or config error, 130 interrupted "
        "(with on_exit: stop, the app's own status).",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help=KEYS["paths"].help)
    p.add_argument("--config", metavar="FILE", help="run the watches of this YAML config")
    p.add_argument(
        "--validate", action="store_true", help="check the config, print the resolved watches, exit"
    )
    p.add_argument("--dry-run", action="store_true", help="log what would be done instead of doing it")
    p.add_argument("-v", "--verbose", action="store_true", help="log every change and why it counts or not")
    p.add_argument("-q", "--quiet", action="store_true", help="log only warnings and errors")
    p.add_argument("--version", action="version", version=f"watchd {__version__}")
    p.add_argument(
        "--example",
        nargs="?",
        const="",
        metavar="NAME",
        help=f"print a shipped example config ({', '.join(_example_names())}) and exit; "
        "without NAME, list them with what each does",
    )
    p.add_argument(
        "--print-unit",
        nargs="?",
        const="watchd",
        choices=["watchd", "watchd@"],
        metavar="watchd|watchd@",
        help="print a systemd user unit for this installation (watchd@: one instance per config) and exit",
    )
    own = p.add_argument_group(
        "watchd itself", "The config file's top-level keys of the same names; a flag wins over the file."
    )
    for key, setting in SETTINGS_KEYS.items():
        if setting.switch:
            own.add_argument(
                *setting_flags(key), dest=key, action="store_const", const=True, help=setting.help
            )
        else:
            own.add_argument(*setting_flags(key), dest=key, metavar=setting.metavar, help=setting.help)
    groups = {
        Place.WATCH: p.add_argument_group(
            "what to watch",
            "With --config, every option below but PATH, the action itself (--pidfile, --process, "
            "--command, --run, --post, -- PROGRAM) and --listen overrides that key in each watch of the file "
            "it applies to.",
        ),
        Place.ACTION: p.add_argument_group("action"),
    }
    for key, spec in KEYS.items():
        if spec.form is Form.POSITIONAL:
            continue
        group = groups[Place.WATCH if spec.place is Place.WATCH else Place.ACTION]
        _add_key(group, key)
    # true aliases: other tools' spellings of the same keys
    m = groups[Place.WATCH]
    m.add_argument(
        "-e",
        "--exts",
        dest="patterns",
        action=_Globs,
        exts=True,
        metavar="EXTS",
        help="watchexec's spelling: -e py,html is -p '*.py' -p '*.html'",
    )
    m.add_argument(
        "--patterns",
        dest="patterns",
        action=_Globs,
        watchmedo=True,
        metavar="GLOB",
        help="watchmedo's spelling: its globs match the whole path ('*/tests/*': tests/ at any depth)",
    )
    m.add_argument(
        "--ignore-patterns",
        dest="ignore",
        action=_Globs,
        watchmedo=True,
        metavar="GLOB",
        help="watchmedo's spelling of --ignore, with watchmedo's whole-path matching",
    )
    m.add_argument("-R", "--recursive", action="store_true", help="accepted for watchmedo; always on")
    a = groups[Place.ACTION]
    a.add_argument(
        "--no-check",
        action="store_true",
        help="no check, not even the Python app's default one (a save that does not compile restarts it)",
    )
    a.add_argument(
        "-r",
        "--restart",
        action="store_true",
        help="watchexec's spelling: run --command as an app that is restarted (same as --run)",
    )
    a.add_argument(
        "--no-watch-imports",
        dest="watch_imports",
        action="store_const",
        const=False,
        help="only the PATHs and patterns, even for -- python ...",
    )
    a.add_argument(
        "-w",
        "--wait",
        dest="on_busy",
        action=_Choice,
        nargs=0,
        const="queue",
        help="watchmedo: wait for the command to finish (same as --on-busy queue)",
    )
    a.add_argument(
        "-W",
        "--drop",
        dest="on_busy",
        action=_Choice,
        nargs=0,
        const="ignore",
        help="watchmedo: drop changes while the command runs (same as --on-busy ignore)",
    )
    return p


def _add_key(group: argparse._ArgumentGroup, key: str) -> None:
    """The option of one key, as the schema describes it; its default in --help from the model."""
    spec = KEYS[key]
    text = help_text(key)
    names = flags(key)
    if spec.form is Form.SWITCH:
        group.add_argument(*names, dest=key, action="store_const", const=True, help=text)
    elif spec.form is Form.OFF:
        group.add_argument(*names, dest=key, action="store_const", const=False, help=text)
    elif spec.form is Form.GLOBS:
        group.add_argument(*names, dest=key, action=_Globs, metavar=spec.metavar, help=text)
    elif spec.form is Form.LIST:
        group.add_argument(*names, dest=key, action="append", metavar=spec.metavar, help=text)
    elif spec.form is Form.CHOICE:
        # read by the config reader like the file's value, so a slip gets the same message
        group.add_argument(*names, dest=key, action=_Choice, metavar=spec.metavar, help=text)
        if spec.off_flag:
            group.add_argument(
                spec.off_flag, dest=key, action=_Choice, nargs=0, const="off", help=spec.flag_help
            )
    else:
        group.add_argument(*names, dest=key, metavar=spec.metavar, help=text)


class _Choice(argparse.Action):
    """A key with a few named values, and its aliases (--on-busy, -w and -W set one thing): two
    different answers contradict each other."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        value = self.const if self.const is not None else values
        seen: dict[str, str] = namespace.__dict__.setdefault("_choice_from", {})
        first = seen.get(self.dest)
        if first is not None and getattr(namespace, self.dest) != value:
            raise UsageError(f"{first} and {option_string} contradict each other (keep one)")
        seen[self.dest] = option_string or self.dest
        setattr(namespace, self.dest, value)


# options that take a duration: `--debounce -1s` is a (negative) value, not an option
_DURATION_OPTIONS = frozenset(f for k, s in KEYS.items() if s.convert is Reader.duration for f in flags(k))


def _join_negative_durations(args: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _DURATION_OPTIONS and i + 1 < len(args) and re.match(r"^-[\d.]", args[i + 1]):
            out.append(f"{arg}={args[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


# options that make a watch (its action, its app's address): with --config they go in the file
_ONE_LINER_ONLY = tuple(k for k in KEYS if k not in OVERRIDE_KEYS and k != "paths")


def _configure_logging(verbose: bool, quiet: bool, fmt: LogFormat = LogFormat.HUMAN) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    # under journald: no timestamps (it adds its own), <N> prefixes set the priority (4 warning, 3 error)
    handler.setFormatter(logformat.formatter(fmt, journald=_under_journald()))
    root = logging.getLogger("watchd")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _under_journald() -> bool:
    stream = os.environ.get("JOURNAL_STREAM")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
        dev, ino = (int(x) for x in stream.split(":"))
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def split_program(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """watchd's own arguments, and the program after the first `--` (None if there is none)."""
    args = list(argv)
    if "--" not in args:
        return args, None
    i = args.index("--")
    return args[:i], args[i + 1 :]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """watchd's options, and the program after `--` as `program` (UsageError for a bad one)."""
    own, program = split_program(argv)
    args = build_parser().parse_args(_join_negative_durations(own))
    args.program = program
    return args


def load(args: argparse.Namespace) -> Config:
    """The config the options say: the file of --config (with its overrides), or the one-liner's
    watch; with watchd's own settings (--metrics, --log-format, --control) over the file's."""
    config = _load_watches(args)
    return with_settings(config, {key: getattr(args, key) for key in SETTINGS_KEYS})


def _load_watches(args: argparse.Namespace) -> Config:
    patterns, ignore = args.patterns, args.ignore
    program: list[str] | None = args.program
    if args.config is not None:
        given = [k for k in _ONE_LINER_ONLY if getattr(args, k) is not None]
        if args.no_check:
            raise UsageError(
                "--no-check cannot be combined with --config (it turns off the one-liner's default "
                "check; in the file, a watch without check: has none)"
            )
        if args.paths or given or program is not None or args.restart:
            if args.paths:
                what = "PATH arguments"
            elif program is not None:
                what = "a program after --"
            elif args.restart:
                what = "--restart"
            else:  # the flag as the user typed it: `confirm` is set by --no-confirm
                what = cli_flag(given[0])
            raise UsageError(f"{what} cannot be combined with --config (put it in the config file instead)")
        overrides = {
            "patterns": patterns or None,
            "ignore": ignore or None,
            **{k: getattr(args, k) for k in OVERRIDE_KEYS - {"patterns", "ignore"}},
        }
        if args.cwd is not None:
            overrides["cwd"] = os.path.abspath(args.cwd)  # from here, not from the config's directory
        config = load_config(args.config, overrides=overrides)
        given = sorted(cli_flag(k) for k, v in overrides.items() if v is not None)
        if given:
            log.info(
                "%s: %s %s every watch of the file that takes %s",
                args.config,
                ", ".join(given),
                "overrides" if len(given) == 1 else "override",
                "it" if len(given) == 1 else "them",
            )
        return config
    run, command = args.run, args.command
    if program is not None:
        if not program:
            raise UsageError("nothing after -- (write the program to run: watchd -p '*.py' -- python app.py)")
        if run is not None or command is not None:
            raise UsageError(
                f"both {'--run' if run is not None else '--command'} and a program after -- given (keep one)"
            )
        _find_program(program[0], args.cwd)
        run = program
    if args.restart:
        if args.pidfile is not None or args.process is not None:
            flag = "--pidfile" if args.pidfile is not None else "--process"
            raise UsageError(f"--restart runs a command as an app: give -c CMD or -- PROGRAM, not {flag}")
        if run is None and command is None:
            raise UsageError("--restart needs something to run: -c CMD, --run CMD or -- PROGRAM ARGS")
        if command is not None:
            run, command = command, None
    if (
        args.pidfile is None
        and args.process is None
        and command is None
        and run is None
        and args.post is None
    ):
        raise UsageError(
            "nothing to do: give --config FILE, or an action: --pidfile FILE, --process NAME, "
            "--command CMD, --run CMD, -- PROGRAM ARGS or --post URL"
        )
    for path in args.paths:
        if not os.path.lexists(path):
            raise UsageError(
                f"PATH {path!r} does not exist (to give a command arguments, quote it: -c 'echo hi'; "
                "a path that appears later belongs in a config file)"
            )
    options: dict[str, object] = {k: getattr(args, k) for k in KEYS}
    python_app = run is not None and _is_python(run)
    if options["watch_imports"] is None and python_app and not args.paths and not patterns:
        # `watchd -- python app.py` needs nothing else: what it imports, and the .py files of the
        # project (not every file: a database or a log written there would restart it for ever)
        options["watch_imports"] = True
        patterns = ["*.py"]
    if args.no_check:
        if args.check is not None:
            raise UsageError("--check and --no-check contradict each other (keep one)")
    elif args.check is None and python_app:
        # a save that does not compile keeps the running app serving (about 1 ms a save)
        options["check"] = PYTHON_CHECK
    options.update(paths=args.paths or ["."], patterns=patterns, ignore=ignore, command=command, run=run)
    config = config_from_options(options, name="watchd")
    # a command-line watch is named for what it does: "hup: src/app.py changed; sent HUP ..."
    return dataclasses.replace(
        config, watches=tuple(dataclasses.replace(w, name=_doing(w.action)) for w in config.watches)
    )


def _find_program(program: str, cwd: str | None) -> None:
    """Refuse at start a `-- PROGRAM` that cannot be run (not on PATH, no such file), as a shell
    would: said once now, not as a failed start at every change."""
    if os.sep in program:
        path = os.path.join(cwd or ".", program)
        if not os.path.isfile(path):
            raise UsageError(f"no program {program!r} (no such file in {os.path.abspath(cwd or '.')})")
        if not os.access(path, os.X_OK):
            raise UsageError(f"{program!r} is not executable (chmod +x it, or run it with its interpreter)")
        return
    if shutil.which(program) is None:
        where = os.environ.get("PATH", os.defpath)
        raise UsageError(f"program {program!r} not found on PATH ({where}): check its name, or give its path")


_PYTHON = re.compile(r"python(?:\d+(?:\.\d+)*)?")


def _is_python(run: str | list[str]) -> bool:
    """True if the app is run by a Python interpreter: `python`, `python3.12`, `.venv/bin/python`,
    or a script whose `#!` line names one (`flask`, `uvicorn`, `gunicorn`, `django-admin`)."""
    try:
        words = shlex.split(run) if isinstance(run, str) else run
    except ValueError:
        return False
    if not words:
        return False
    if _PYTHON.fullmatch(os.path.basename(words[0])):
        return True
    program = shutil.which(words[0])
    try:
        with open(program or "", "rb") as f:
            first = f.readline(256)
    except OSError:
        return False
    interpreter = first[2:].split()[:2] if first.startswith(b"#!") else []  # "#!/usr/bin/env python3"
    return any(_PYTHON.fullmatch(os.path.basename(os.fsdecode(w))) for w in interpreter)


def _doing(action: ActionSettings) -> str:
    if isinstance(action, PidfileSettings | ProcessSettings):
        return signal_name(action.signal).lower()
    return action.kind


def describe(config: Config) -> str:
    """The resolved watches, as --validate prints them."""
    lines = []
    src = str(config.source) if config.source else "command line"
    n = len(config.watches)
    lines.append(f"{src}: OK, {n} {'watch' if n == 1 else 'watches'}")
    for w in config.watches:
        lines.append(f"{w.name}:")
        shown = []
        for p in w.paths:
            note = "" if p.exists() else " (does not exist yet: watched when it appears)"
            shown.append(f"{p}{note}")
        lines.append("  paths:     " + ", ".join(shown))
        lines.append("  patterns:  " + (", ".join(w.patterns) if w.patterns else "every file"))
        ign = ", ".join(w.ignore) if w.ignore else ""
        if w.ignore_defaults:
            ign = f"{ign} + built-in ignores" if ign else "built-in ignores"
        if w.ignore_directories:
            ign = f"{ign} + directory events" if ign else "directory events"
        if w.gitignore:
            ign = f"{ign} + what git ignores" if ign else "what git ignores"
        if w.content:
            ign = (
                f"{ign} + files saved with the bytes they had"
                if ign
                else "files saved with the bytes they had"
            )
        lines.append("  ignore:    " + (ign or "nothing"))
        timing = f"debounce {format_duration(w.debounce)}, max delay {format_duration(w.max_delay)}"
        if w.poll is Poll.ALWAYS:
            timing += f", polling every {format_duration(w.poll_interval)}"
        lines.append("  timing:    " + timing)
        if w.check is not None:
            lines.append("  check:     " + w.check.describe())
        if w.env:  # names only: values are often secrets
            lines.append("  env:       " + ", ".join(f"{name}=***" for name, _ in w.env))
        if w.env_file is not None:
            lines.append(f"  env_file:  {w.env_file} (read at every run; its values are not shown)")
        lines.append("  action:    " + w.action.describe())
        if isinstance(w.action, CommandSettings | RunSettings):
            lines.append("  stop:      " + w.action.stop.describe())
        if isinstance(w.action, RunSettings):
            a = w.action
            if a.listen is not None:
                extra = f", {a.listen_env.value} variables" if a.listen_env else ""
                lines.append(f"  listen:    {a.listen.describe()} (fd 3, LISTEN_FDS{extra})")
            lines.append(f"  on exit:   {a.on_exit.value}")
        if isinstance(w.action, PidfileSettings | ProcessSettings) or (
            isinstance(w.action, RunSettings) and w.action.reload is not None
        ):
            lines.append(
                "  confirm:   "
                + (
                    f"workers replaced within {format_duration(w.action.confirm_timeout)}"
                    if w.action.confirm
                    else "off"
                )
            )
    return "\n".join(lines)


# The shipped example configs (package data; the repository's config/ links to them). A plain
# directory: importlib.resources cost 2.3 ms of every start, for --help's list of names.
_EXAMPLES = Path(__file__).resolve().parent / "examples"


def _examples() -> Path:
    return _EXAMPLES


def _example_names() -> list[str]:
    return sorted(f.name.removesuffix(".yaml") for f in _examples().iterdir() if f.name.endswith(".yaml"))


def _example(name: str) -> int:
    """--example NAME: the shipped example config."""
    folder = _examples()
    names = _example_names()
    if not name:
        for n in names:
            first = folder.joinpath(f"{n}.yaml").read_text(encoding="utf-8").splitlines()[0]
            print(f"{n:<10} {first.lstrip('# ')}")
        print("\nwatchd --example NAME > watchd.yaml writes one; watchd --config watchd.yaml runs it")
        return ExitStatus.OK
    if name not in names:
        print(f"watchd: no example {name!r} (examples: {', '.join(names)})", file=sys.stderr)
        return ExitStatus.USAGE
    sys.stdout.write(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8"))
    return ExitStatus.OK


def _print_unit(args: argparse.Namespace) -> int:
    """--print-unit: the systemd unit; with --config, for that file, sized for its stop timeouts."""
    template = args.print_unit == "watchd@"
    if args.config is None:
        sys.stdout.write(unit_file(template=template))
        return ExitStatus.OK
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"watchd: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    stops = [
        w.action.stop.timeout for w in config.watches if isinstance(w.action, CommandSettings | RunSettings)
    ]
    path = None if template else str(config.source)
    sys.stdout.write(unit_file(template=template, config=path, stop_timeout=max(stops, default=None)))
    return ExitStatus.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run watchd; return the exit status (never calls sys.exit)."""
    # watchdog 7.1 warns (on stderr, outside logging) when `mkdir -p` makes it add one watch
    # twice; the watch is fine, the warning is noise in a daemon's log.
    warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in subcommands.NAMES:
        return subcommands.main(argv)
    try:
        args = parse_args(argv)
        if args.verbose and args.quiet:
            raise UsageError("-v and -q contradict each other (keep one)")
    except UsageError as exc:
        print(f"watchd: {exc} (see watchd --help)", file=sys.stderr)
        return ExitStatus.USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    _configure_logging(args.verbose, args.quiet)
    if args.example is not None:
        return _example(args.example)
    if args.print_unit:
        extra = [k for k in (*_ONE_LINER_ONLY, *OVERRIDE_KEYS) if getattr(args, k) is not None]
        if extra or args.paths or args.program is not None or args.validate or args.dry_run:
            print(
                "watchd: --print-unit takes no other options but --config FILE "
                "(the unit runs that config; put the watch in it) (see watchd --help)",
                file=sys.stderr,
            )
            return ExitStatus.USAGE
        return _print_unit(args)
    try:
        config = load(args)
    except UsageError as exc:
        print(f"watchd: {exc} (see watchd --help)", file=sys.stderr)
        return ExitStatus.USAGE
    except ConfigError as exc:
        # command-line errors already name their source "watchd"; a file's name its path
        text = str(exc)
        print(text if text.startswith("watchd: ") else f"watchd: {text}", file=sys.stderr)
        return ExitStatus.USAGE
    if args.validate:
        print(describe(config))
        return ExitStatus.OK
    if config.log_format is not LogFormat.HUMAN:
        _configure_logging(args.verbose, args.quiet, config.log_format)
    try:
        control = _control(config, args, argv)
    except ControlError as exc:
        print(f"watchd: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    metrics = None
    if config.metrics is not None:
        address = config.metrics

        def metrics(source: Callable[[], Snapshot | None]) -> MetricsServer:
            from watchd.metrics import MetricsServer  # noqa: PLC0415 (prometheus_client: only with metrics on)

            return MetricsServer(address, source)

    reload = (lambda: load(args)) if args.config is not None else None
    try:
        daemon = Daemon(
            config,
            reload=reload,
            notifier=Notifier.from_environ(),
            dry_run=args.dry_run,
            terminal=Terminal.detect(),
            control=control,
            metrics=metrics,
        )
    except (ListenError, WatchFailed) as exc:
        print(f"watchd: {exc}" if not str(exc).startswith("watchd: ") else str(exc), file=sys.stderr)
        return ExitStatus.USAGE
    except Exception as exc:
        if type(exc).__name__ == "MetricsError":  # (the module is imported only with metrics on)
            print(f"watchd: {exc}", file=sys.stderr)
            return ExitStatus.USAGE
        return _unexpected(exc)
    try:
        return daemon.run()
    except WatchFailed as exc:  # a watch's app could not start: nothing is left running
        log.error("%s", exc)
        return ExitStatus.USAGE
    except DaemonError as exc:
        log.error("%s", exc)
        return ExitStatus.FAILURE
    except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
        return ExitStatus.INTERRUPTED
    except Exception as exc:
        return _unexpected(exc)


def _control(config: Config, args: argparse.Namespace, argv: Sequence[str]) -> ControlServer | None:
    """The control socket, bound (ControlError: another watchd runs this config, or the socket
    asked for cannot be made). The default place is best-effort: a read-only filesystem there (a
    container) is a warning, and watchd runs without one. A dry run has one only when asked."""
    if config.control is False or (config.control is None and args.dry_run):
        return None
    default = config.control is None
    path = default_path(config.source, argv) if config.control is None else config.control
    server = ControlServer(path)
    try:
        server.bind(default_place=default)
    except ControlInUse:
        raise
    except ControlError as exc:
        if not default:
            raise
        log.warning("no control socket (watchd status, trigger, pause, resume): %s; give --control PATH", exc)
        return None
    return server


def _unexpected(exc: Exception) -> int:
    """A failure nothing foresaw (a bug): one error line, the traceback only with -v."""
    debug = log.isEnabledFor(logging.DEBUG)
    hint = "" if debug else " (run with -v for the traceback)"
    log.error("unexpected error: %s%s", one_line(exc), hint, exc_info=exc if debug else None)
    return ExitStatus.FAILURE


def run() -> None:
    """Console-script entry point."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `watchd --example gunicorn | head`: the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        status = ExitStatus.FAILURE
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()
