"""The sockets watchd holds for apps: binding, errors, and the hand-over at a restart."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from watchd.sockets import ListenError, Listeners, bind, queued
from watchd.values import parse_listen

# skipped off Linux and in the macOS-profile lane (tests/conftest.py): the portable side has none
linux_only = pytest.mark.linux_only("SO_REUSEPORT steering (a classic BPF program)")


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_port_0_binds_a_free_port_and_says_which() -> None:
    listener = bind(parse_listen("127.0.0.1:0"))
    try:
        assert listener.port > 0
        assert listener.bound == f"127.0.0.1:{listener.port}"
        with connect(listener.port):
            pass
    finally:
        listener.close()


def test_an_address_in_use_is_refused_even_though_ours_could_be_shared() -> None:
    """Ours is re-bound with SO_REUSEPORT for hand-overs; a second watchd must still be refused."""
    first = bind(parse_listen("127.0.0.1:0"))
    try:
        with pytest.raises(ListenError, match=f"127.0.0.1:{first.port} is already in use"):
            bind(parse_listen(f"127.0.0.1:{first.port}"))
        taken = socket.socket()
        with pytest.raises(OSError):
            taken.bind(("127.0.0.1", first.port))
        taken.close()
    finally:
        first.close()


def test_the_registry_shares_one_socket_per_address_and_closes_it_with_its_last_user() -> None:
    registry = Listeners()
    address = parse_listen("127.0.0.1:0")
    a = registry.acquire(address)
    b = registry.acquire(address)
    assert a is b and a.users == 2
    registry.release(a)
    assert a.sock.fileno() != -1
    registry.release(b)
    assert a.sock.fileno() == -1


@linux_only
def test_hand_over_steers_new_connections_to_the_new_socket() -> None:
    listener = bind(parse_listen("127.0.0.1:0"))
    try:
        assert listener.steerable
        waiting = connect(listener.port)  # queued on the old socket before the hand-over
        old = listener.hand_over()
        assert old is not None and old is not listener.sock
        assert queued(old) == 1
        clients = [connect(listener.port) for _ in range(20)]
        assert queued(listener.sock) == 20  # every new one on the new socket
        assert queued(old) == 1
        conn, _ = old.accept()  # the old app serves what it had
        conn.close()
        assert queued(old) == 0
        listener.retire(old)
        for c in [waiting, *clients]:
            c.close()
        # the next generation again gets every new connection
        older = listener.hand_over()
        assert older is not None
        late = connect(listener.port)
        assert queued(listener.sock) == 1 and queued(older) == 20
        late.close()
        listener.retire(older)
    finally:
        listener.close()


@linux_only
@pytest.mark.parametrize("generation", [1, 2, 3])
def test_a_successor_gets_no_connection_before_its_commit(generation: int) -> None:
    """The next app may start early on its socket; until the switch every client goes to the
    running app's, on the first restart and on later ones (the steering program outlives sockets)."""
    listener = bind(parse_listen("127.0.0.1:0"))
    try:
        for _ in range(generation - 1):  # earlier restarts
            old = listener.hand_over()
            assert old is not None
            listener.retire(old)
        early = listener.successor()
        assert early is not None
        clients = [connect(listener.port) for _ in range(20)]
        assert (queued(listener.sock), queued(early)) == (20, 0)
        early.close()  # discarded: nothing was queued on it, nobody is reset
        for c in clients:
            c.close()
    finally:
        listener.close()


@linux_only
def test_take_back_undoes_a_hand_over() -> None:
    listener = bind(parse_listen("127.0.0.1:0"))
    try:
        old = listener.hand_over()
        assert old is not None
        listener.take_back(old)
        assert listener.sock is old
        with connect(listener.port):
            assert queued(old) == 1
    finally:
        listener.close()


def test_unix_sockets_are_shared_not_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    listener = bind(parse_listen(f"unix:{path}"))
    try:
        assert not listener.steerable
        assert listener.hand_over() is None
    finally:
        listener.close()
    assert not path.exists()


def test_a_stale_unix_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: left over from a crash
    listener = bind(parse_listen(f"unix:{path}"))
    listener.close()
    path.write_text("not a socket")
    with pytest.raises(ListenError, match="exists and is not a socket"):
        bind(parse_listen(f"unix:{path}"))
