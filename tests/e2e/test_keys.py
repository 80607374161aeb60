"""Keys in the terminal (-I, --interactive), in a real pseudo-terminal: r acts now, p pauses and
resumes, c clears, ? lists the keys, q quits with 0; apps read /dev/null then (the keyboard is
watchd's); the terminal's modes come back on every way out."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import pytest
from helpers.apps import save
from helpers.procs import WATCHD, Watchd
from helpers.terminal import Pty

PY = sys.executable
CLEAR = "\x1b[H\x1b[2J\x1b[3J"

pytestmark = pytest.mark.skipif(not shutil.which("setsid"), reason="needs util-linux setsid")


def interactive(ptys: list[Pty], cwd: Path, *argv: str) -> Pty:
    t = Pty([WATCHD, "-I", *argv], cwd=cwd)
    ptys.append(t)
    assert t.wait_for("keys: r run now"), t.output()  # the keyboard is read from here on
    assert not t.cooked()
    return t


def test_r_p_c_and_q(ptys: list[Pty], src: Path) -> None:
    t = interactive(ptys, src, "-c", 'echo "run $WATCHD_TRIGGER $WATCHD_COUNT"', ".")
    t.type("r")
    assert t.wait_for("command: key r: acting now"), t.output()
    assert t.wait_for("run manual 0"), t.output()
    t.type("p")
    assert t.wait_for("command: paused until resumed"), t.output()
    t.type("p")
    assert t.wait_for("command: resumed; nothing changed meanwhile"), t.output()
    t.type("c")
    assert t.wait_for(CLEAR), t.output()
    t.type("?")
    assert t.wait_for("keys: r run now", count=2), t.output()
    t.type("x")
    assert t.wait_for("key 'x' does nothing (? lists the keys)"), t.output()
    t.type("q")
    assert t.wait() == 0, t.output()
    assert "key q: stopping" in t.output()
    assert t.cooked()


def test_a_change_while_paused_is_acted_on_at_resume(ptys: list[Pty], src: Path) -> None:
    t = interactive(ptys, src, "-v", "-c", 'echo "run $WATCHD_COUNT"', ".")
    t.type("p")
    assert t.wait_for("paused until resumed"), t.output()
    save(src / "a.py", "x = 1\n")
    assert t.wait_for("paused; holding a.py"), t.output()
    t.type("p")
    assert t.wait_for("resumed; acting once on a.py changed"), t.output()
    assert t.wait_for("run 1"), t.output()
    t.type("q")
    assert t.wait() == 0


def test_r_restarts_the_app_which_reads_dev_null(ptys: list[Pty], src: Path) -> None:
    save(
        src / "app.py",
        "import os, sys, time\nos.write(1, f'app read {sys.stdin.read()!r}\\n'.encode())\ntime.sleep(600)\n",
    )
    t = interactive(ptys, src, "--", PY, "app.py")
    assert t.wait_for("app read ''"), t.output()  # EOF at once: the keyboard is watchd's
    t.type("r")
    assert t.wait_for("restarted"), t.output()
    assert t.wait_for("app read ''", count=2), t.output()
    assert not t.app_has_terminal()  # the terminal never left watchd
    t.type("\x03")  # Ctrl-C: watchd's own SIGINT; it stops the app and exits 130
    assert t.wait() == 130, t.output()
    assert t.cooked()


@pytest.mark.parametrize("how", ["q", "ctrl-c", "sigterm", "app exit"])
def test_the_terminal_modes_come_back_on_every_way_out(ptys: list[Pty], src: Path, how: str) -> None:
    if how == "app exit":  # on_exit: stop ends watchd with the app's status
        save(
            src / "gate.py",
            "import os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.02)\nraise SystemExit(3)\n",
        )
        t = interactive(ptys, src, "--on-exit", "stop", "--", PY, "gate.py")
        (src / "go").write_text("")
        assert t.wait() == 3, t.output()
    else:
        t = interactive(ptys, src, "-c", "true", ".")
        if how == "q":
            t.type("q")
            assert t.wait() == 0, t.output()
        elif how == "ctrl-c":
            t.type("\x03")
            assert t.wait() == 130, t.output()
        else:
            t.proc.send_signal(signal.SIGTERM)
            assert t.wait() == 0, t.output()
    assert t.cooked(), t.output()


def test_without_a_terminal_interactive_is_a_warning(src: Path, start_watchd: type[Watchd]) -> None:
    w = start_watchd(["-I", "-c", "true", str(src)])
    assert "--interactive: stdin is not a terminal in whose foreground watchd runs; no keys" in w.log()
