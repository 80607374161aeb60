"""What the kernel says about a process's sockets: the accepted connections a stop waits for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from watchd.platform import darwin, linux

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


def tcp_pair(made: list[socket.socket], family: int, host: str) -> int:
    listener = socket.socket(family)
    listener.bind((host, 0))
    listener.listen()
    port = int(listener.getsockname()[1])
    client = socket.create_connection((host, port))
    accepted, _ = listener.accept()
    made += [listener, client, accepted]
    return port


@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_an_accepted_tcp_connection_counts_and_goes_away_when_closed(
    sockets: list[socket.socket], family: int, host: str, side: ModuleType
) -> None:
    port = tcp_pair(sockets, family, host)
    assert side.accepted_connections([os.getpid()], port=port) == 1
    sockets[2].close()  # the server side of the connection
    assert side.accepted_connections([os.getpid()], port=port) == 0


def test_outgoing_connections_and_other_ports_do_not_count(
    sockets: list[socket.socket], side: ModuleType
) -> None:
    port = tcp_pair(sockets, socket.AF_INET, "127.0.0.1")
    # the client end is ours too, but its local port is an ephemeral one (a database pool's kind)
    assert side.accepted_connections([os.getpid()], port=port) == 1
    assert side.accepted_connections([os.getpid()], port=port + 1 if port < 65535 else port - 1) == 0
    # sockets of other processes do not count
    assert side.accepted_connections([], port=port) == 0


def test_a_process_that_is_gone_holds_no_connection(sockets: list[socket.socket]) -> None:
    port = tcp_pair(sockets, socket.AF_INET, "127.0.0.1")
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()  # reaped: its PID names no process now
    for side in (linux, darwin) if sys.platform == "linux" else (darwin,):  # (Linux's reads /proc)
        assert side.accepted_connections([child.pid, os.getpid()], port=port) == 1, side.NAME


def unix_pair(made: list[socket.socket], path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    accepted, _ = listener.accept()
    made += [listener, client, accepted]
    return accepted


@pytest.mark.linux_only("/proc/net/unix")
def test_unix_connections(sockets: list[socket.socket], tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    accepted = unix_pair(sockets, path)
    assert linux.accepted_connections([os.getpid()], path=path) == 1
    accepted.close()
    assert linux.accepted_connections([os.getpid()], path=path) == 0


def test_the_portable_side_cannot_tell_unix_connections_from_the_listener(
    sockets: list[socket.socket], tmp_path: Path
) -> None:
    """macOS gives an accepted Unix socket the listener's path and no state: "cannot tell"
    (None), so a stop does not wait for a count it cannot have."""
    path = str(tmp_path / "app.sock")
    unix_pair(sockets, path)
    assert darwin.accepted_connections([os.getpid()], path=path) is None
