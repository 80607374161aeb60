"""What the kernel says about a process's sockets: the accepted connections a stop waits for."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchd import procfs

pytestmark = pytest.mark.skipif(not procfs.available(), reason="needs /proc (Linux)")


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
    sockets: list[socket.socket], family: int, host: str
) -> None:
    port = tcp_pair(sockets, family, host)
    inodes = procfs.socket_inodes([os.getpid()])
    assert procfs.accepted_connections(inodes, port=port) == 1
    sockets[2].close()  # the server side of the connection
    assert procfs.accepted_connections(procfs.socket_inodes([os.getpid()]), port=port) == 0


def test_outgoing_connections_and_other_ports_do_not_count(sockets: list[socket.socket]) -> None:
    port = tcp_pair(sockets, socket.AF_INET, "127.0.0.1")
    inodes = procfs.socket_inodes([os.getpid()])
    # the client end is ours too, but its local port is an ephemeral one (a database pool's kind)
    assert procfs.accepted_connections(inodes, port=port) == 1
    assert procfs.accepted_connections(inodes, port=port + 1 if port < 65535 else port - 1) == 0
    # sockets of other processes do not count
    assert procfs.accepted_connections(set(), port=port) == 0


def test_unix_connections(sockets: list[socket.socket], tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    accepted, _ = listener.accept()
    sockets += [listener, client, accepted]
    inodes = procfs.socket_inodes([os.getpid()])
    assert procfs.accepted_connections(inodes, path=path) == 1
    accepted.close()
    assert procfs.accepted_connections(procfs.socket_inodes([os.getpid()]), path=path) == 0


def test_group_states_lists_this_processes_group() -> None:
    states = procfs.group_states(os.getpgrp())
    assert os.getpid() in states
    assert states[os.getpid()] in ("R", "S")
