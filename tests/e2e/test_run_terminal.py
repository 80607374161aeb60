"""Run mode in a real terminal (a pseudo-terminal): the app owns the keyboard, Ctrl-C ends both,
the terminal's modes come back after each app, and Ctrl-Z / fg work from an interactive shell."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.apps import save
from helpers.procs import WATCHD, Watchd, wait_for
from helpers.terminal import Pty

PY = sys.executable

pytestmark = pytest.mark.skipif(not shutil.which("setsid"), reason="needs util-linux setsid")

ASK = """\
import time
name = input("name? ")
print(f"hello {name}", flush=True)  # one write: log lines share the terminal
time.sleep(600)
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    return d


def watchd_in_pty(ptys: list[Pty], app_dir: Path, *argv: str) -> Pty:
    p = Pty([WATCHD, "-p", "*.py", *argv], cwd=app_dir)
    ptys.append(p)
    return p


def test_the_app_reads_the_keyboard_and_ctrl_c_ends_both(ptys: list[Pty], app_dir: Path) -> None:
    save(app_dir / "ask.py", ASK)
    t = watchd_in_pty(ptys, app_dir, "--", PY, "ask.py")
    assert t.wait_for("name? "), t.output()
    t.type("bob\n")
    assert t.wait_for("hello bob"), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")  # Ctrl-C: the terminal signals its foreground group, the app's
    assert t.wait() == 130, t.output()
    assert "Ctrl-C: stopping watchd" in t.output()
    assert t.echo_on()


def test_a_restarted_app_gets_the_keyboard_too(ptys: list[Pty], app_dir: Path) -> None:
    save(app_dir / "ask.py", ASK)
    t = watchd_in_pty(ptys, app_dir, "--", PY, "ask.py")
    assert t.wait_for("name? "), t.output()
    save(app_dir / "ask.py", ASK.replace("hello", "welcome"))
    assert t.wait_for("restarted"), t.output()
    assert t.wait_for("name? ", count=2), t.output()
    t.type("ann\n")
    assert t.wait_for("welcome ann"), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")
    assert t.wait() == 130, t.output()


def test_ctrl_c_ends_watchd_even_when_the_app_catches_it_and_exits_0(ptys: list[Pty], app_dir: Path) -> None:
    # Flask's and Django's development servers exit 0 on Ctrl-C
    save(
        app_dir / "polite.py",
        # up once it catches Ctrl-C: a Ctrl-C before the `try` would end it with a traceback
        "import time\ntry:\n    print('app is up', flush=True)\n    time.sleep(600)\n"
        "except KeyboardInterrupt:\n    print('bye', flush=True)\n",
    )
    t = watchd_in_pty(ptys, app_dir, "--", PY, "polite.py")
    assert t.wait_for("app is up"), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")
    assert t.wait() == 130, t.output()
    assert "bye" in t.output()
    assert "exit 0 after" in t.output()
    assert "left running" not in t.output()  # the keyboard sentinel is watchd's, not the app's


def test_terminal_modes_are_restored_after_each_app(ptys: list[Pty], app_dir: Path) -> None:
    """An app that turns echo off and dies (as a crashed getpass or pdb can) leaves it off;
    watchd restores the modes it started with before the next app and on its way out."""
    save(
        app_dir / "noecho.py",
        textwrap.dedent("""\
        import sys, termios, time
        attrs = termios.tcgetattr(0)
        print(f"echo {bool(attrs[3] & termios.ECHO)}", flush=True)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(0, termios.TCSANOW, attrs)
        time.sleep(600)
        """),
    )
    t = watchd_in_pty(ptys, app_dir, "--", PY, "noecho.py")
    assert t.wait_for("echo True"), t.output()
    assert wait_for(lambda: not t.echo_on()), t.output()  # the app turns it off after it says so
    (app_dir / "other.py").write_text("")
    assert t.wait_for("restarted"), t.output()
    assert t.wait_for("echo True", count=2), t.output()  # the new app found it on again
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")
    assert t.wait() == 130, t.output()
    assert t.echo_on()


def test_pdb_reads_the_keyboard_and_keeps_its_ctrl_c(ptys: list[Pty], app_dir: Path) -> None:
    debug = "import time\nx = 6\nbreakpoint()\nprint('after', x * 7, flush=True)\n"
    debug += "while True:\n    time.sleep(0.05)\n"  # pdb stops between lines, not inside a sleep
    save(app_dir / "debug.py", debug)
    t = watchd_in_pty(ptys, app_dir, "--", PY, "debug.py")
    assert t.wait_for("(Pdb) "), t.output()
    t.type("p x * 7\n")
    assert t.wait_for("42"), t.output()
    t.type("c\n")
    assert t.wait_for("after 42"), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")  # pdb catches it and stops the program where it is: the app and watchd go on
    assert t.wait_for("(Pdb) ", count=2), t.output()
    assert t.proc.poll() is None
    t.type("q\n")  # quitting the debugger right after the Ctrl-C ends the app, and watchd with it
    assert t.wait() == 130, t.output()


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash for job control")
def test_ctrl_z_and_fg_from_an_interactive_shell(ptys: list[Pty], app_dir: Path) -> None:
    save(app_dir / "ask.py", ASK)
    env = dict(os.environ, PS1="$ ", TERM="dumb")
    t = Pty(["bash", "--norc", "--noprofile", "-i"], cwd=app_dir, env=env)
    ptys.append(t)
    assert t.wait_for("$ "), t.output()
    t.type(f"{WATCHD} -p '*.py' -- {PY} ask.py\n")
    assert t.wait_for("name? "), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x1a")  # Ctrl-Z: the app's group stops, and watchd stops so the shell sees its job stop
    assert t.wait_for("Stopped"), t.output()
    t.type("fg\n")
    assert t.wait_for("ask.py\r\n", count=2), t.output()  # bash echoes the job it resumes
    t.type("zed\n")
    assert t.wait_for("hello zed"), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")
    t.type("echo status=$?\n")
    assert t.wait_for("status=130"), t.output()
    t.type("exit\n")
    assert t.wait() == 0


def test_only_one_app_gets_the_keyboard(ptys: list[Pty], app_dir: Path, tmp_path: Path) -> None:
    """Two run watches: the first has the terminal; the second reads /dev/null (never stopped
    for reading a terminal it does not own, which would look like a Ctrl-Z)."""
    save(app_dir / "ask.py", ASK)
    save(
        app_dir / "other.py",
        # one write: watchd's own log lines share the terminal and must not land inside the line
        "import os, sys, time\n"
        "os.write(1, f'other read {sys.stdin.read()!r}\\n'.encode())\n"
        "time.sleep(600)\n",
    )
    config = tmp_path / "watchd.yaml"
    config.write_text(
        f"defaults:\n  cwd: {app_dir}\n"
        f"watches:\n  first:\n    paths: [{app_dir}]\n    patterns: [ask.py]\n    run: [{PY}, ask.py]\n"
        f"  second:\n    paths: [{app_dir}]\n    patterns: [other.py]\n    run: [{PY}, other.py]\n"
    )
    t = Pty([WATCHD, "--config", str(config)], cwd=app_dir)
    ptys.append(t)
    assert t.wait_for("other read ''"), t.output()  # EOF at once
    assert t.wait_for("name? "), t.output()
    t.type("kim\n")
    assert t.wait_for("hello kim"), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")
    assert t.wait() == 130, t.output()


def test_ctrl_z_without_a_job_control_shell_is_not_a_hang(ptys: list[Pty], app_dir: Path) -> None:
    """Here watchd leads its session (nothing could `fg` it): Ctrl-Z must not stop it for good."""
    save(app_dir / "ask.py", ASK)
    t = watchd_in_pty(ptys, app_dir, "--", PY, "ask.py")
    assert t.wait_for("name? "), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x1a")
    assert t.wait_for("Ctrl-Z: no shell here to resume watchd with fg; the app goes on"), t.output()
    t.type("lee\n")
    assert t.wait_for("hello lee"), t.output()
    assert t.wait_app_has_terminal(), t.output()
    t.type("\x03")
    assert t.wait() == 130, t.output()


CLEAR = "\x1b[H\x1b[2J\x1b[3J"


def test_clear_wipes_the_terminal_before_each_command(ptys: list[Pty], app_dir: Path) -> None:
    # the command prints RUN; its log line shows the printf, which does not contain RUN
    t = watchd_in_pty(ptys, app_dir, "--clear", "-c", "printf 'R%sN\\n' U", ".")
    assert t.wait_for("ready"), t.output()
    assert CLEAR not in t.output()  # nothing ran yet
    save(app_dir / "a.py", "x = 1\n")
    assert t.wait_for("RUN"), t.output()
    assert t.output().index(CLEAR) < t.output().index("RUN"), t.output()
    save(app_dir / "a.py", "x = 2\n")
    assert t.wait_for("RUN", count=2), t.output()
    assert t.output().count(CLEAR) == 2, t.output()


def test_clear_before_each_app_start_and_never_into_a_log_file(
    ptys: list[Pty], app_dir: Path, start_watchd: type[Watchd]
) -> None:
    save(app_dir / "app.py", "import time\nprint('up', flush=True)\ntime.sleep(600)\n")
    t = watchd_in_pty(ptys, app_dir, "--clear", "--", PY, "app.py")
    assert t.wait_for("up"), t.output()
    assert t.output().index(CLEAR) < t.output().index("up")
    save(app_dir / "app.py", "import time\nprint('up again', flush=True)\ntime.sleep(600)\n")
    assert t.wait_for("up again"), t.output()
    assert t.output().count(CLEAR) == 2, t.output()
    # stdout not a terminal (a file, under systemd): no escape codes in it
    w = start_watchd(["-p", "*.py", "--clear", "-c", "echo ran", "."], cwd=app_dir)
    save(app_dir / "b.py", "y = 1\n")
    assert w.wait_log("ran echo ran: exit 0"), w.log()
    assert "\x1b" not in w.log()
