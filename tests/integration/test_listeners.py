"""The sockets watchd holds for apps: binding, errors, and the hand-over at a restart."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from watchd.readiness import ACCEPTED, FAILED, HTTP_PROBE, NOTIFIED, NotifySocket, Readiness
from watchd.sockets import Listener, ListenError, Listeners, bind, queued
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


# --------------------------------------------------------------------------- readiness (watchd.readiness)


@contextmanager
def next_socket(address: str = "127.0.0.1:0") -> Iterator[tuple[Listener, socket.socket]]:
    """A listener and its successor, the next app's socket (dropped and closed afterwards)."""
    listener = bind(parse_listen(address))
    try:
        successor = listener.successor()
        assert successor is not None
        yield listener, successor
        listener.drop(successor)
    finally:
        listener.close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@linux_only
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:0",
        "0.0.0.0:0",
        pytest.param(
            "[::1]:0", marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
        ),
    ],
)
def test_the_probe_lands_on_the_successor_only_and_every_client_on_the_running_socket(address: str) -> None:
    with next_socket(address) as (listener, successor):
        probe = listener.probe(successor)
        assert probe is not None
        host = "::1" if address.startswith("[") else "127.0.0.1"
        clients = [socket.create_connection((host, listener.port), timeout=5) for _ in range(20)]
        assert (queued(listener.sock), queued(successor)) == (20, 1)
        probe.close()
        listener.drop(successor)
        late = socket.create_connection((host, listener.port), timeout=5)  # the probe's rule is gone
        assert queued(listener.sock) == 21
        for c in [*clients, late]:
            c.close()


@linux_only
def test_readiness_comes_when_the_app_accepts_the_probe_and_not_before() -> None:
    with next_socket() as (listener, successor):
        readiness = Readiness(successor, listener.probe(successor), None)
        assert not readiness.blind
        for _ in range(3):
            assert readiness.check() is None  # queued, not accepted: the app still boots
        conn, _ = successor.accept()  # the app serves
        assert readiness.check() == ACCEPTED
        conn.close()
        readiness.close()


@linux_only
def test_the_probe_carries_only_an_end_of_file_and_an_app_holding_it_open_is_ready_too() -> None:
    with next_socket() as (listener, successor):
        readiness = Readiness(successor, listener.probe(successor), None)
        conn, _ = successor.accept()  # accepted before watchd's first look, and kept open
        conn.settimeout(5)
        assert conn.recv(100) == b""  # an HTTP server reads an end of file
        assert readiness.check() == ACCEPTED
        conn.close()
        readiness.close()


@linux_only
def test_a_client_from_another_address_with_the_probes_port_goes_to_the_running_socket() -> None:
    with next_socket("0.0.0.0:0") as (listener, successor):
        probe = listener.probe(successor)
        assert probe is not None
        twin = socket.socket()
        twin.bind(("127.0.0.2", probe.getsockname()[1]))  # the same source port, another address
        twin.connect(("127.0.0.1", listener.port))
        assert wait_queued(listener.sock, 1)
        assert queued(successor) == 1  # the probe alone
        twin.close()
        probe.close()


@linux_only
def test_a_socket_a_stranger_holds_in_the_group_stops_steering_for_good(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A process left over from a discarded app keeps its socket in the group: the next successor
    is not the group's second socket, and steering by index would send clients to the stranger."""
    listener = bind(parse_listen("127.0.0.1:0"))
    try:
        stranger = listener.successor()  # watchd dropped it, but a leftover process kept it open
        assert stranger is not None
        successor = listener.successor()
        assert successor is not None
        assert listener.probe(successor) is None
        assert not listener.steerable
        assert "holds a socket on this address" in caplog.text
        clients = [connect(listener.port) for _ in range(5)]
        assert queued(listener.sock) == 5  # every client to the running app's socket
        for c in clients:
            c.close()
        stranger.close()
        successor.close()
    finally:
        listener.close()


def wait_queued(sock: socket.socket, n: int) -> bool:
    deadline = time.monotonic() + 5
    while queued(sock) < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


@linux_only
def test_with_a_probe_the_accept_decides_not_ready_1() -> None:
    notify = NotifySocket()
    with next_socket() as (listener, successor):
        readiness = Readiness(successor, listener.probe(successor), notify)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"READY=1\nSTATUS=Gunicorn arbiter booted", notify.path)
        assert readiness.check() is None  # its master booted; no worker accepts yet
        conn, _ = successor.accept()
        assert readiness.check() == ACCEPTED
        conn.close()
        readiness.close()


def test_without_a_probe_ready_1_on_the_notify_socket_is_ready_and_other_messages_are_not() -> None:
    notify = NotifySocket()
    readiness = Readiness(socket.socket(), None, notify)
    try:
        assert os.stat(os.path.dirname(notify.path)).st_mode & 0o777 == 0o700
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.sendto(b"STATUS=booting\nMAINPID=1", notify.path)
        assert readiness.check() is None
        sender.sendto(b"READY=1\nSTATUS=Gunicorn arbiter booted", notify.path)  # gunicorn's message
        assert readiness.check() == NOTIFIED
        sender.close()
    finally:
        readiness.sock.close()
        readiness.close()
    assert not os.path.exists(notify.path)


@linux_only
@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (b"HTTP/1.1 500 INTERNAL SERVER ERROR\r\nContent-Length: 0\r\n\r\n", FAILED),
        (b"HTTP/1.1 404 NOT FOUND\r\nContent-Length: 0\r\n\r\n", ACCEPTED),
        (b"HTTP/1.0 501 Unsupported method ('OPTIONS')\r\n\r\n", ACCEPTED),  # http.server: no OPTIONS
        (b"", ACCEPTED),  # closed without an answer (not an HTTP server)
    ],
)
def test_the_http_probe_asks_options_star_and_only_a_500_is_a_broken_app(answer: bytes, verdict: str) -> None:
    with next_socket() as (listener, successor):
        readiness = Readiness(successor, listener.probe(successor, HTTP_PROBE), None, http=True)
        assert readiness.check() is None  # not accepted yet
        conn, _ = successor.accept()
        conn.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(1024)
        assert request.startswith(b"OPTIONS * HTTP/1.0\r\n")
        conn.sendall(answer)
        conn.close()
        assert wait_for_verdict(readiness) == verdict
        readiness.close()


def wait_for_verdict(readiness: Readiness) -> str | None:
    deadline = time.monotonic() + 5
    while (how := readiness.check()) is None and time.monotonic() < deadline:
        readiness.wait(0.01)
    return how
