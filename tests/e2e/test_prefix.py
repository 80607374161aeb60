"""Several watches in one terminal: each line of their commands' and apps' output starts with the
watch's name, and a line is never split between two watches (real processes writing fast, in
pieces, into a real pseudo-terminal)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import psutil
import pytest
from helpers.apps import save
from helpers.procs import WATCHD, Watchd, wait_for
from helpers.terminal import Pty

PY = sys.executable
LINES = 300

pytestmark = pytest.mark.skipif(not shutil.which("setsid"), reason="needs util-linux setsid")

# Each line in three writes (a partial line twice), as fast as it can: the two watches' writers
# interleave at the pipe level all the time.
WRITER = """\
import os, sys
tag = sys.argv[1]
for i in range({lines}):
    os.write(1, f"{{tag}}:{{i}}:".encode())
    os.write(1, (tag * 40).encode())
    os.write(2 if i % 7 == 0 else 1, b"\\n")  # stderr is prefixed too, in order
os.write(1, f"{{tag}} done\\n".encode())
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def config(tmp_path: Path, watches: dict[str, str], extra: str = "", filename: str = "watchd.yaml") -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    lines = [f"defaults:\n  cwd: {tmp_path}\n  paths: [{src}]\n  run_at_start: true\nwatches:"]
    for name, action in watches.items():
        lines.append(f"  {name}:\n    {action}\n{extra}")
    path = tmp_path / filename
    path.write_text("\n".join(lines) + "\n")
    return path


def lines_of(output: str) -> list[str]:
    return [ANSI.sub("", line) for line in output.replace("\r\n", "\n").split("\n")]


def test_two_watches_lines_never_mix(ptys: list[Pty], tmp_path: Path) -> None:
    save(tmp_path / "writer.py", WRITER.format(lines=LINES))
    path = config(tmp_path, {"aa": f"command: [{PY}, writer.py, a]", "bb": f"command: [{PY}, writer.py, b]"})
    t = Pty([WATCHD, "--config", str(path)], cwd=tmp_path, env={"TERM": "xterm", "PATH": "/usr/bin:/bin"})
    ptys.append(t)
    assert t.wait_for("a done", timeout=20) and t.wait_for("b done", timeout=20), t.output()
    assert t.wait_for("aa: at start; ran") and t.wait_for("bb: at start; ran"), t.output()
    assert "\x1b[36m[aa]\x1b[0m " in t.output()  # a colour per watch on a terminal that has them
    got: dict[str, str] = {"a": "", "b": ""}
    for line in lines_of(t.output()):
        m = re.match(r"^\[(aa|bb)\] (.*)$", line)
        if m is None:
            assert "[aa]" not in line and "[bb]" not in line, f"a prefix inside a line: {line!r}"
            continue
        tag = m.group(1)[0]
        assert not re.search("[ab]:" if tag == "b" else "b:", m.group(2).replace(f"{tag}:", "")), line
        got[tag] += m.group(2) + "\n"
    for tag in "ab":
        # every line of each watch, whole and in order (a line cut by a pause is one line of the
        # same watch continued: still never inside another watch's line)
        expected = "".join(f"{tag}:{i}:{tag * 40}\n" for i in range(LINES)) + f"{tag} done\n"
        assert got[tag].replace("\n", "") == expected.replace("\n", "")
        assert got[tag].count("\n") >= LINES + 1


def test_an_app_with_the_terminal_reads_it_and_its_prompt_is_shown(ptys: list[Pty], tmp_path: Path) -> None:
    """The first run watch's app reads the keyboard as before; its output comes through a pipe:
    the unfinished prompt is shown once it waits, prefixed, and PYTHONUNBUFFERED=1 lets print()
    through at once."""
    save(
        tmp_path / "ask.py",
        "import os, sys, time\n"
        "print(f'tty out {sys.stdout.isatty()} unbuffered {os.environ.get(\"PYTHONUNBUFFERED\")}')\n"
        "name = input('name? ')\nprint(f'hello {name}')\ntime.sleep(600)\n",
    )
    path = config(tmp_path, {"app": f"run: [{PY}, ask.py]", "css": "command: echo built"})
    t = Pty([WATCHD, "--config", str(path)], cwd=tmp_path, env={"TERM": "dumb", "PATH": "/usr/bin:/bin"})
    ptys.append(t)
    assert t.wait_for("[app] tty out False unbuffered 1"), t.output()
    assert t.wait_for("[app] name? "), t.output()
    assert t.wait_for("[css] built"), t.output()
    assert "\x1b[" not in t.output().replace("\x1b[H\x1b[2J\x1b[3J", "")  # TERM=dumb: no colour
    assert t.wait_app_has_terminal(), t.output()
    t.type("bob\n")
    assert t.wait_for("[app] hello bob"), t.output()
    t.type("\x03")
    assert t.wait() == 130, t.output()


def test_no_prefix_and_a_single_watch_keep_direct_output(
    ptys: list[Pty], tmp_path: Path, start_watchd: type[Watchd]
) -> None:
    path = config(
        tmp_path, {"aa": "command: echo from-aa", "bb": "command: echo from-bb"}, "    prefix: false"
    )
    t = Pty([WATCHD, "--config", str(path)], cwd=tmp_path)
    ptys.append(t)
    assert t.wait_for("from-aa") and t.wait_for("from-bb"), t.output()
    assert "[aa]" not in t.output() and "[bb]" not in t.output()
    one = Pty([WATCHD, "--run-at-start", "-c", "echo solo"], cwd=tmp_path / "src")
    ptys.append(one)
    assert one.wait_for("solo"), one.output()
    assert "[command]" not in one.output()
    # stdout not a terminal (a file, a journal): the output as the children wrote it
    path = config(
        tmp_path, {"aa": "command: echo from-aa", "bb": "command: echo from-bb"}, filename="file.yaml"
    )
    w = start_watchd(["--config", str(path)])
    assert w.wait_log("from-aa") and w.wait_log("from-bb"), w.log()
    assert wait_for(lambda: "bb: at start; ran" in w.log()), w.log()
    assert "[aa]" not in w.log()


# An app the fork server can preload (http.server and what it imports); `partial` is written with no
# newline and no flush: shown only if the app's stdout is unbuffered, as PYTHONUNBUFFERED=1 asks.
PREFIXED_APP = """\
import http.server, os, sys, time
print(f"TAG {os.environ['WATCHD_RESTARTS']} pid {os.getpid()}", flush=True)
print("to stderr", file=sys.stderr)
sys.stdout.write("partial")
time.sleep(600)
"""


def test_a_prefixed_app_restarts_warm_with_its_output_prefixed(ptys: list[Pty], tmp_path: Path) -> None:
    """The app's restarts are forks of its fork server, given the watch's pipe as stdout and
    stderr: every line still comes prefixed (stderr's too), and the app's stdout is unbuffered as
    in a new interpreter with PYTHONUNBUFFERED=1 (the server's own was made for the terminal)."""
    app = tmp_path / "src" / "app.py"
    path = config(tmp_path, {"app": f"run: [{PY}, {app}]", "css": "command: echo built"})
    save(app, PREFIXED_APP.replace("TAG", "up"))
    t = Pty(
        [WATCHD, "-v", "--config", str(path)], cwd=tmp_path, env={"TERM": "dumb", "PATH": "/usr/bin:/bin"}
    )
    ptys.append(t)
    assert t.wait_for("[app] up 0 pid ") and t.wait_for("[css] built"), t.output()
    ready = re.compile(r"app: warm restarts: fork server pid (\d+) preloaded (\d+) modules")
    assert wait_for(lambda: ready.search(t.output()), timeout=20), t.output()
    found = ready.search(t.output())
    assert found is not None
    server, modules = int(found.group(1)), int(found.group(2))
    for restart in (1, 2):
        tag = f"again{restart}"
        save(app, PREFIXED_APP.replace("TAG", tag))
        assert t.wait_for(f"[app] {tag} {restart} pid ", timeout=20), t.output()
        assert t.wait_for(f"app: warm (fork, {modules} modules preloaded) in ", count=restart), t.output()
        pid = re.findall(rf"\[app\] {tag} {restart} pid (\d+)", t.output())[0]
        assert psutil.Process(int(pid)).ppid() == server, t.output()
        assert t.wait_for("[app] to stderr", count=restart + 1), t.output()
        assert t.wait_for("[app] partial", count=restart + 1), t.output()
    assert "cold" not in t.output().split("preloaded", 1)[1], t.output()
