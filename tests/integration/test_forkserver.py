"""The fork server driven directly, as a run watch drives it (watchd.actions.preload.ForkServer):
a real server process, real forks, real descriptors."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.apps import save
from helpers.procs import pid_alive, wait_for

from watchd.actions.preload import ForkServer, python_entry

# Writes each number in $TARGETS into the descriptor of that number, then exits.
WRITER = """\
import os
for n in map(int, os.environ["TARGETS"].split()):
    os.write(n, str(n).encode())
"""
PER_FORK = 16  # the most descriptors one fork request carries


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ForkServer]:
    save(tmp_path / "app.py", WRITER)
    env = dict(os.environ)
    entry = python_entry((sys.executable, "app.py"), tmp_path, env)
    settled = threading.Event()
    assert json.__file__ is not None
    made = ForkServer(
        "app", entry, env, tmp_path, [json.__file__], terminal=False, on_settled=lambda _s: settled.set()
    )
    try:
        assert settled.wait(20) and made.ready is not None, made.refused
        yield made
    finally:
        made.close()


def test_descriptors_land_at_any_numbers_and_every_fork_is_answered(
    server: ForkServer, tmp_path: Path
) -> None:
    """Targets all over the numbers the server's own descriptors take while it forks (its wake-up
    pipe, the descriptors it received, the pipe on which the new process says it started): each
    fork is answered, and the app finds each descriptor at its number. (A target on the server's
    answer pipe used to replace it in the new process: the answer went into the app's descriptor,
    and the server waited for a process that was running the app, answering nothing.)"""
    for first in range(3, 3 + 3 * PER_FORK, PER_FORK):
        fork_and_read(server, tmp_path, list(range(first, first + PER_FORK)))


def fork_and_read(server: ForkServer, cwd: Path, targets: list[int]) -> None:
    """Fork the writer with a pipe at each of `targets`; each pipe must bring back its number."""
    request: dict[str, object] = {
        "cwd": str(cwd),
        "env": {**os.environ, "TARGETS": " ".join(map(str, targets))},
        "argv": ["app.py"],
        "orig_argv": [sys.executable, "app.py"],
        "path0": str(cwd),
        "kind": "script",
        "target": "app.py",
        "terminal": False,
        "listen": False,
    }
    pipes = [os.pipe() for _ in targets]
    try:
        leader = server.fork(request, [w for _r, w in pipes], targets)  # OSError if not answered
    finally:
        for _r, w in pipes:
            os.close(w)  # the app has its own
    try:
        assert wait_for(lambda: not pid_alive(leader.pid)), f"the app at {targets} did not end"
        assert leader.wait() == 0
        assert [os.read(r, 100).decode() for r, _w in pipes] == [str(n) for n in targets]
    finally:
        leader.collect()
        for r, _w in pipes:
            os.close(r)
