"""Listening sockets that watchd holds for the apps it runs (`listen:`), across their restarts.

watchd binds and listens once, before the first child starts, and hands the socket to every
child as file descriptor 3 with systemd's socket-activation variables (LISTEN_FDS=1,
LISTEN_PID, LISTEN_FDNAMES). While one child stops and the next boots, the socket stays open
in watchd: connections wait in the kernel's backlog instead of being refused.

The same address used by a watch before and after a config reload is the same socket (a
`Listeners` registry keyed by address), so a reload never re-binds a port it already holds.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
import time
from typing import TYPE_CHECKING, Any

from watchd import platform
from watchd.model import ListenAddress

if TYPE_CHECKING:
    import socket

# `socket` is imported when an address is bound: watches without `listen` never need it.

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3  # systemd's first passed descriptor; apps look there


class ListenError(Exception):
    """An address cannot be bound; the message says why and what to do."""


class Listener:
    """A bound, listening socket, and how to give it to a child process.

    Where it can (Linux, TCP), a restart hands over to a new socket on the same address
    (SO_REUSEPORT) and steers new connections to it with a one-instruction BPF program, so the
    app being stopped gets no new connection while it finishes the ones it has: an app whose
    graceful shutdown closes connections it accepted but has not read yet (uvicorn) would
    otherwise drop the ones that arrive as it stops.
    """

    def __init__(self, address: ListenAddress, sock: socket.socket, *, steerable: bool = False) -> None:
        self.address = address
        self.sock = sock
        self.steerable = steerable
        self.users = 0
        name = sock.getsockname()
        self.port = 0  # the TCP port it is bound to (the kernel's choice for port 0)
        if address.is_unix:
            self.bound = f"unix:{address.path}"
        else:
            host, self.port = name[0], int(name[1])
            self.bound = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def fileno(self) -> int:
        return self.sock.fileno()

    def successor(self) -> socket.socket | None:
        """The next generation's socket on the same address, with no connection steered to it
        yet (the next app can start on it while the running one serves); None if this listener
        cannot have two."""
        if not self.steerable or self.users > 1:
            return None
        try:
            return _reuseport_socket(self.sock.family, self.sock.getsockname())
        except OSError as exc:
            log.debug("cannot open a second socket on %s: %s; sharing one", self.bound, exc)
            self.steerable = False
            return None

    def probe(self, successor: socket.socket, request: bytes = b"") -> socket.socket | None:
        """A connection to this address that only `successor` gets (the group's second socket;
        everything else still goes to the current one), carrying `request` (else an end of
        file), and already in `successor`'s accept queue: its accept says the next app serves
        (watchd.readiness).
        None where it cannot be made. If it landed on a socket that is not watchd's (a process
        left over from an earlier app holds one in the group), steering stops for good."""
        import socket  # noqa: PLC0415 (lazy, see the module's imports)

        if not self.steerable or self.address.is_unix:
            return None
        host = self.sock.getsockname()[0]
        if host == "0.0.0.0":  # noqa: S104 (a wildcard: probe through loopback)
            targets = ["127.0.0.1"]
        elif host == "::":  # IPv6 loopback, else IPv4's where the socket takes both
            dual = not self.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            targets = ["::1", "127.0.0.1"] if dual else ["::1"]
        else:
            targets = [host]
        why = "no address"
        for target in targets:
            probe = socket.socket(socket.AF_INET6 if ":" in target else socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind((target, 0))  # its source address and port, known before the SYN, pick the socket
                platform.current.steer(self.sock, 0, probe=probe.getsockname()[:2], probe_index=1)
                probe.settimeout(1.0)  # the kernel completes the handshake: no app is involved
                probe.connect((target, self.port))
                if request:
                    probe.sendall(request)  # into the socket's buffers: read once the app accepts
                else:
                    probe.shutdown(socket.SHUT_WR)
                probe.setblocking(False)
            except OSError as exc:
                probe.close()
                why = str(exc)
                continue
            if _arrives(successor):
                return probe
            probe.close()
            with contextlib.suppress(OSError):
                platform.current.steer(self.sock, 0)
            self.steerable = False
            log.warning(
                "%s: a process that is not the running app holds a socket on this address (left over "
                "from an earlier app?): from now on the running app is stopped before the next starts",
                self.bound,
            )
            return None
        log.debug("cannot probe the next app's socket on %s: %s", self.bound, why)
        return None

    def drop(self, new: socket.socket) -> None:
        """Close a `successor` that was never committed (its app did not take over)."""
        new.close()
        with contextlib.suppress(OSError):
            platform.current.steer(self.sock, 0)  # forget the probe's rule

    def commit(self, new: socket.socket) -> socket.socket | None:
        """Steer every new connection to `new` and make it the current socket; return the
        previous one (`retire` it once its app is gone), or None if steering failed (then
        nothing changed: `new` is the caller's to close)."""
        try:
            # [old, new]: the second socket of the group gets every new connection
            platform.current.steer(new, 1)
        except OSError as exc:
            log.debug("cannot steer connections on %s: %s; sharing one socket", self.bound, exc)
            self.steerable = False
            return None
        old, self.sock = self.sock, new
        return old

    def retire(self, old: socket.socket) -> None:
        """Close a socket `commit` replaced, once its app is gone; the current one, now alone in
        the group (index 0), is where connections go, also when the next successor joins."""
        old.close()
        with contextlib.suppress(OSError):
            platform.current.steer(self.sock, 0)

    def hand_over(self) -> socket.socket | None:
        """`successor` and `commit` at once: new connections go to the next app's socket from now."""
        new = self.successor()
        if new is None:
            return None
        old = self.commit(new)
        if old is None:
            new.close()
        return old

    def take_back(self, old: socket.socket) -> None:
        """Undo `commit` (the app could not be stopped): connections go to `old` again."""
        new, self.sock = self.sock, old
        with contextlib.suppress(OSError):
            platform.current.steer(old, 0)
        new.close()

    def close(self) -> None:
        self.sock.close()
        if self.address.is_unix:
            with contextlib.suppress(OSError):
                os.unlink(self.address.path)


def bind(address: ListenAddress) -> Listener:
    """Bind and listen on `address`; ListenError says what went wrong and what to do."""
    import socket  # noqa: PLC0415 (lazy, see the module's imports)

    where = f"{address.where}: " if address.where else ""
    shown = address.describe()
    sockaddr: str | tuple[Any, ...]
    if address.is_unix:
        _remove_stale_unix_socket(address, where)
        family, sockaddr = socket.AF_UNIX, address.path
    else:
        try:
            infos = socket.getaddrinfo(
                address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise ListenError(
                f"{where}cannot resolve {address.host!r}: {exc.strerror} (write an IP address such as "
                "127.0.0.1)"
            ) from None
        family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
        if family != socket.AF_UNIX and not platform.current.STEERING:
            listener = Listener(address, sock)
            log.debug(
                "%s: one socket shared by an app and the next (no connection steering on %s): "
                "connections made during a restart wait in its backlog",
                listener.bound,
                platform.current.NAME,
            )
            return listener
        if family != socket.AF_UNIX:
            # Bound without SO_REUSEPORT first, so an address someone else listens on is an
            # error; now that it is ours, re-bind with it, for handing over at restarts.
            bound = sock.getsockname()
            sock.close()
            try:
                sock = _reuseport_socket(family, bound)
                try:
                    # every connection to the current socket, until a commit
                    platform.current.steer(sock, 0)
                except OSError as exc:  # no classic BPF for SO_REUSEPORT here: share one socket
                    log.debug("cannot steer connections on %s: %s", address.describe(), exc)
                    return Listener(address, sock)
                return Listener(address, sock, steerable=True)
            except OSError:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(bound)
                sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"{where}{shown} is already in use (stop what listens there, or choose another "
                + ("path)" if address.is_unix else "port)")
            ) from None
        if exc.errno == errno.EACCES:
            hint = (
                "check the directory's permissions"
                if address.is_unix
                else "ports below 1024 need root: use a port above 1023"
            )
            raise ListenError(f"{where}permission denied binding {shown} ({hint})") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ListenError(
                f"{where}{shown}: no such address on this machine (use 127.0.0.1, or an address of "
                "one of its interfaces)"
            ) from None
        if exc.errno == errno.ENOENT:
            raise ListenError(
                f"{where}{shown}: the directory does not exist (create it, or choose another path)"
            ) from None
        raise ListenError(f"{where}cannot listen on {shown}: {exc.strerror}") from None
    return Listener(address, sock)


def _reuseport_socket(family: int, sockaddr: tuple[Any, ...]) -> socket.socket:
    import socket  # noqa: PLC0415 (lazy, see the module's imports)

    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def _arrives(sock: socket.socket, within: float = 1.0) -> bool:
    """Whether a connection just made shows up in `sock`'s accept queue (the kernel may finish
    the handshake a moment after connect() returned, when its softirq runs late)."""
    deadline = time.monotonic() + within
    while not queued(sock):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
    return True


def queued(sock: socket.socket) -> int:
    """How many connections wait in a TCP listener's accept queue (0 where it cannot tell)."""
    return platform.current.accept_queue(sock)


def _remove_stale_unix_socket(address: ListenAddress, where: str) -> None:
    """A socket file nobody listens on is left over from a crash: remove it, as gunicorn does."""
    import socket  # noqa: PLC0415 (lazy, see the module's imports)

    try:
        st = os.lstat(address.path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenError(
            f"{where}{address.path} exists and is not a socket (remove it, or choose another path)"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(address.path)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address.path)
        return
    except OSError:
        return  # let bind() report it
    finally:
        probe.close()
    raise ListenError(
        f"{where}unix:{address.path} is already in use (stop what listens there, or choose another path)"
    )


class Listeners:
    """The sockets watchd holds, by address. Acquired on the daemon's thread, released by
    closing actions (which may close in parallel)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str, int], Listener] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(address: ListenAddress) -> tuple[str, str, int]:
        return (address.path, address.host, address.port)

    def acquire(self, address: ListenAddress) -> Listener:
        """The socket for `address`: the one already held, else a newly bound one."""
        key = self._key(address)
        with self._lock:
            listener = self._held.get(key)
            if listener is None:
                try:
                    listener = bind(address)
                except ListenError:
                    same_port = [h for h in self._held.values() if address.port and h.port == address.port]
                    if not same_port:
                        raise
                    where = f"{address.where}: " if address.where else ""
                    raise ListenError(
                        f"{where}{address.describe()}: watchd itself listens on {same_port[0].bound} "
                        "(restart watchd to move an app to another address of the same port)"
                    ) from None
                self._held[key] = listener
                log.info("listening on %s (passed to the app as fd 3)", listener.bound)
            listener.users += 1
            return listener

    def release(self, listener: Listener) -> None:
        """One user fewer; the socket closes when none is left."""
        with self._lock:
            listener.users -= 1
            if listener.users > 0:
                return
            self._held.pop(self._key(listener.address), None)
        listener.close()

    def close(self) -> None:
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for listener in held:
            listener.close()
