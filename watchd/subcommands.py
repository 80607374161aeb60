"""`watchd status`, `watchd trigger`, `watchd pause`, `watchd resume`: ask a running watchd.

Each finds the daemon by --socket PATH, or by --config FILE (the socket the watchd running FILE
has: the file's `control:` key, else the default place named after FILE), or, with neither, the
one watchd this user runs (several: they are listed, choose one).

Exit status: 0 done; 1 no watchd answered there; 2 a usage error or a request the watchd refused
(no such watch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from watchd.control import ControlError, default_path, request, running_sockets, runtime_dir
from watchd.errors import ConfigError
from watchd.logtext import took
from watchd.values import parse_duration

NAMES = ("status", "trigger", "pause", "resume")

OK, NOT_RUNNING, USAGE = 0, 1, 2


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Usage(message)


def _parser(name: str) -> argparse.ArgumentParser:
    what = {
        "status": "show what each watch of a running watchd is doing",
        "trigger": "make a watch act now, as if a change had come "
        "(WATCHD_TRIGGER=manual; SIGUSR1 to watchd: every watch)",
        "pause": "collect a watch's changes without acting on them, until resume (or --for DUR)",
        "resume": "act once on everything a paused watch collected, and go on watching",
    }[name]
    p = _Parser(prog=f"watchd {name}", description=what)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE", help="the watchd running this config file")
    where.add_argument("--socket", metavar="PATH", help="the watchd listening on this control socket")
    if name == "status":
        p.add_argument("--json", action="store_true", help="print the daemon's answer as JSON, for scripts")
        return p
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("watch", nargs="?", metavar="NAME", help="the watch")
    which.add_argument("--all", action="store_true", help="every watch")
    if name == "pause":
        p.add_argument("--for", dest="duration", metavar="DUR", help="resume by itself after this long (5m)")
    return p


def main(argv: Sequence[str]) -> int:
    name, rest = argv[0], list(argv[1:])
    try:
        args = _parser(name).parse_args(rest)
        socket = _find(args)
        message: dict[str, object] = {"command": name}
        if name != "status":
            if args.all:
                message["all"] = True
            else:
                message["watch"] = args.watch
        if name == "pause" and args.duration is not None:
            try:
                seconds = parse_duration(args.duration)
            except ValueError as exc:
                raise _Usage(f"--for {args.duration}: {exc}") from None
            if seconds <= 0:
                raise _Usage(f"--for {args.duration}: must be longer than 0s (e.g. 5m)")
            message["for"] = seconds
    except _Usage as exc:
        hint = ""
        if os.path.exists(name):
            hint = f"; to watch the directory {name!r}, write it as ./{name}"
        print(f"watchd {name}: {exc} (see watchd {name} --help{hint})", file=sys.stderr)
        return USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except ControlError as exc:
        print(f"watchd {name}: {exc}", file=sys.stderr)
        return NOT_RUNNING
    try:
        answer = request(socket, message)
    except ControlError as exc:
        print(f"watchd {name}: {exc}", file=sys.stderr)
        return NOT_RUNNING
    if not answer.get("ok"):
        print(f"watchd {name}: {answer.get('error', 'refused')}", file=sys.stderr)
        return USAGE
    if name == "status":
        if args.json:
            print(json.dumps(answer, indent=2))
        else:
            sys.stdout.write(render(answer))
        return OK
    watches = answer.get("watches")
    done = ", ".join(str(w) for w in watches) if isinstance(watches, list) else ""
    verb = {"trigger": "triggered", "pause": "paused", "resume": "resumed"}[name]
    print(f"{verb}: {done}")
    return OK


def _find(args: argparse.Namespace) -> Path:
    """The socket the options name (see the module's docstring)."""
    if args.socket is not None:
        return Path(args.socket)
    if args.config is not None:
        from watchd.config import load_config  # noqa: PLC0415 (only with --config)

        try:
            control = load_config(args.config).control
        except ConfigError:
            control = None  # being edited: the running watchd is found where the file's name puts it
        if control is False:
            raise ControlError(f"{args.config} has control: false: that watchd has no control socket")
        return control if control is not None else default_path(Path(args.config))
    found = running_sockets()
    if len(found) == 1:
        return found[0]
    if not found:
        raise ControlError(
            f"no watchd is running as this user (no socket in {runtime_dir()}): "
            "give --config FILE or --socket PATH"
        )
    listed = ", ".join(str(p) for p in found)
    raise _Usage(f"{len(found)} watchds are running ({listed}): give --config FILE or --socket PATH")


# ---------------------------------------------------------------------------------- the table


def _clock(at: object) -> str:
    if not isinstance(at, int | float):
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(at))


def _ago(at: object) -> str:
    if not isinstance(at, int | float):
        return "-"
    seconds = max(0, int(time.time() - at))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def render(answer: dict[str, object]) -> str:
    """`watchd status` for people: a line about watchd, a table of the watches, and under a watch
    the lines that need more room (its app, a problem)."""
    head = f"watchd {answer.get('version')}, pid {answer.get('pid')}, up {_ago(answer.get('started'))}"
    if answer.get("config"):
        head += f", {answer['config']}"
    lines = [head]
    if answer.get("config_error"):
        lines.append(f"config error, running the previous config: {answer['config_error']}")
    columns = (
        "WATCH",
        "STATE",
        "DIRS",
        "LAST CHANGE",
        "LAST ACTION",
        "BATCHES",
        "OK",
        "FAILED",
        "REFUSED",
        "CHECK",
    )
    rows: list[tuple[str, ...]] = [columns]
    extra: list[list[str]] = [[]]
    watches = answer.get("watches")
    for w in watches if isinstance(watches, list) else []:
        c = w["counters"]
        actions = c["actions"]
        change = w.get("last_change")
        changed = "-"
        if change:
            more = f" (+{change['count'] - 1})" if change["count"] > 1 else ""
            changed = f"{_clock(change['at'])} {_short(change['first'])}{more}"
        action = w.get("last_action")
        acted = "-"
        if action:
            acted = f"{_clock(action['at'])} {action['result']} {took(action['duration'])}: {action['what']}"
        state = w["state"]
        if state == "paused":
            until = w.get("paused_until")
            state = f"paused{f' until {_clock(until)}' if until else ''}"
            if w.get("held"):
                state += f" ({w['held']} held)"
        if w.get("busy"):
            state += ", acting"
        rows.append(
            (
                w["name"],
                state,
                str(w["directories"]),
                changed,
                acted,
                str(c["batches"]),
                str(actions.get("ok", 0)),
                str(actions.get("failed", 0) + actions.get("timeout", 0)),
                str(actions.get("refused", 0)),
                str(actions.get("check_failed", 0)),
            )
        )
        notes = []
        app = w.get("app")
        if app:
            if app.get("pid"):
                notes.append(
                    f"app: pid {app['pid']}, up {_ago(app.get('started'))}, {c['restarts']} restarts"
                )
            else:
                notes.append(
                    f"app: not running ({app.get('last_exit') or 'not started'}), {c['restarts']} restarts"
                )
        confirmations = c.get("confirmations") or {}
        if any(confirmations.values()):
            notes.append(
                f"reloads confirmed: {confirmations.get('confirmed', 0)}, "
                f"not confirmed: {confirmations.get('not_confirmed', 0)}"
            )
        if w.get("problem"):
            notes.append(f"problem: {w['problem']}")
        extra.append(notes)
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    for row, notes in zip(rows, extra, strict=True):
        cells = [cell.ljust(widths[i]) if i < 5 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        lines.extend(f"  {note}" for note in notes)
    return "\n".join(lines) + "\n"


def _short(path: str) -> str:
    """A path for the table: relative to here when below it, control characters escaped."""
    here = os.getcwd().rstrip(os.sep) + os.sep
    if path.startswith(here):
        path = path[len(here) :]
    return path if path.isprintable() else repr(path)[1:-1]
