"""The connection drain before a stop, through the platform seam: a group holding an accepted
connection is not frozen until it lets go; where the platform cannot count (macOS's Unix
sockets) the stop goes ahead at once, the group not left frozen."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers.procs import wait_for

from watchd import platform
from watchd.actions.process import Child, Drain, spawn
from watchd.model import Stop
from watchd.platform import darwin

# Accepts one connection on the listener it inherits as fd 3, says so, and holds it until the
# client closes it; then waits to be stopped.
SERVER = """\
import socket, time
listener = socket.socket(fileno=3)
conn, _ = listener.accept()
print("accepted", flush=True)
while conn.recv(1024):
    pass
conn.close()
print("closed", flush=True)
while True:
    time.sleep(60)
"""


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        child.stop(Stop(signal.SIGKILL, 5))


def not_frozen(pid: int) -> bool:
    return psutil.Process(pid).status() != psutil.STATUS_STOPPED


def serve(tmp_path: Path, children: list[Child]) -> tuple[Child, socket.socket, Path, int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = int(listener.getsockname()[1])
    log = tmp_path / "server.log"
    fd3 = listener.fileno()
    argv = [sys.executable, "-c", f"import os; os.dup2({fd3}, 3); exec({SERVER!r})"]
    with log.open("wb") as out:
        child = spawn(tuple(argv), cwd=tmp_path, env=dict(os.environ), output=out, pass_fds=(fd3,))
    children.append(child)
    listener.close()  # the app holds it now
    return child, socket.create_connection(("127.0.0.1", port), timeout=5), log, port


@pytest.mark.usefixtures("side")  # each side of the seam as platform.current in turn
def test_the_drain_waits_for_the_accepted_connection_to_close(tmp_path: Path, children: list[Child]) -> None:
    child, client, log, port = serve(tmp_path, children)
    with client:
        assert wait_for(lambda: "accepted" in log.read_text())
        # held: not quiet by a short deadline, and not left frozen
        assert child.quiesce(Drain(port=port), time.monotonic() + 0.3) is False
        assert not_frozen(child.pid)
    assert wait_for(lambda: "closed" in log.read_text())
    assert child.quiesce(Drain(port=port), time.monotonic() + 5) is True  # frozen, none in hand
    assert wait_for(lambda: not not_frozen(child.pid))


def test_a_drain_the_platform_cannot_count_does_not_wait(
    tmp_path: Path, children: list[Child], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "current", darwin)
    child, client, log, _ = serve(tmp_path, children)
    with client:
        assert wait_for(lambda: "accepted" in log.read_text())
        # a Unix socket on the portable side: "cannot tell", so no wait for the deadline (an hour
        # away: waiting for it would be past pytest's timeout)
        assert child.quiesce(Drain(path=str(tmp_path / "app.sock")), time.monotonic() + 3600) is False
        assert not_frozen(child.pid)
