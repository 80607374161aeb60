"""The control socket: `watchd status`, `trigger`, `pause` and `resume` talk to a running watchd.

A Unix stream socket, by default `$XDG_RUNTIME_DIR/watchd/ID.sock` (without XDG_RUNTIME_DIR, as on
macOS or in a container: `$TMPDIR/watchd-UID/ID.sock`), where ID names the config file (its name
and a hash of its absolute path) or the one-liner (a hash of its directory and arguments), so
`watchd status --config FILE` finds the watchd running FILE; or `control: PATH` / --control PATH.
The directory is 0700 and the socket 0600, and every connection's peer credentials are checked
(SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS: see watchd.platform): only watchd's own user and
root are served.

The protocol is line-delimited JSON: a request is one object on one line, the answer too.

    -> {"command": "status"}
    <- {"ok": true, "pid": 4242, "watches": [{"name": "api", "state": "watching", ...}], ...}
    -> {"command": "trigger", "watch": "api"}          (or "all": true)
    <- {"ok": true, "watches": ["api"]}
    -> {"command": "pause", "all": true, "for": 300}   ("for" in seconds, optional)
    -> {"command": "resume", "watch": "api"}
    <- {"ok": false, "error": "no watch 'apx' (watches: api, worker)"}

One watchd per socket: the daemon holds an exclusive lock on PATH.lock (whose text is its PID)
for as long as it runs. A second watchd on the same config finds the lock taken and stops
(exit 2) instead of doubling every action; a socket left by a watchd that was killed has no lock
holder, and is taken over. The server knows nothing of watches: it hands each request to the
daemon (`handle`, which answers on the daemon's own loop) and writes the answer back.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import select
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from watchd import platform

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024  # a request is a few dozen bytes
CLIENT_TIMEOUT = 2.0  # a connection idle this long is closed (the server serves one at a time)
ANSWER_TIMEOUT = 10.0  # how long a subcommand waits for watchd's answer
_ID_HASH = 10  # hex digits of the hash in a socket's name


class ControlError(Exception):
    """The control socket cannot be had: the message says why and what to do (exit status 2)."""


class ControlInUse(ControlError):
    """Another watchd holds the socket: this one must not start (it would double every action)."""


Handler = Callable[[dict[str, object]], dict[str, object]]


# ---------------------------------------------------------------------------------- where


def runtime_dir() -> Path:
    """Where the sockets of this user's watchds are: $XDG_RUNTIME_DIR/watchd, else TMPDIR/watchd-UID."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "watchd"
    return Path(tempfile.gettempdir()) / f"watchd-{os.geteuid()}"


def socket_id(config: Path | None, one_liner: Sequence[str] = ()) -> str:
    """The socket's name for a config file (`dev-1a2b3c4d5e`), or for a one-liner run in this
    directory with these arguments (`watchd-1a2b3c4d5e`)."""
    if config is not None:
        path = os.path.realpath(config)
        digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:_ID_HASH]
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(path).stem)[:40] or "config"
        return f"{stem}-{digest}"
    text = "\0".join([os.getcwd(), *one_liner])
    return f"watchd-{hashlib.sha256(os.fsencode(text)).hexdigest()[:_ID_HASH]}"


def default_path(config: Path | None, one_liner: Sequence[str] = ()) -> Path:
    return runtime_dir() / f"{socket_id(config, one_liner)}.sock"


def private_dir(directory: Path, *, create: bool) -> None:
    """Make sure `directory` is a directory only this user can enter (0700, owned by it), making
    it if `create`. A directory another user made (in a shared /tmp) is never used."""
    if create:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ControlError(
                f"cannot make the control socket's directory {directory}: {exc.strerror}"
            ) from None
    try:
        st = os.lstat(directory)
    except OSError as exc:
        raise ControlError(f"no control socket directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ControlError(f"{directory} is not a directory (remove it, or give --control PATH)")
    if st.st_uid != os.geteuid():
        raise ControlError(
            f"{directory} belongs to uid {st.st_uid}, not to this user ({os.geteuid()}): "
            "another user may be waiting for watchd's socket there (remove it, or give --control PATH)"
        )
    if st.st_mode & 0o077:
        raise ControlError(
            f"{directory} is open to other users (mode {stat.S_IMODE(st.st_mode):o}): chmod 700 {directory}"
        )


# ---------------------------------------------------------------------------------- the server


class ControlServer:
    """Serves one socket. `bind` claims it (ControlError if another watchd has it); `start` serves
    it on a thread of its own; `close` stops and removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Handler | None = None
        self._lock_fd: int | None = None
        self._sock: socket.socket | None = None
        self._wake_r, self._wake_w = os.pipe()  # (not inherited by children: PEP 446)
        self._thread = threading.Thread(target=self._serve, name="watchd-control", daemon=True)
        self._closed = False
        self._default_place = False

    def bind(self, *, default_place: bool) -> None:
        """Claim the socket: its lock, then the socket itself (a stale one is replaced)."""
        try:
            self._bind(default_place)
        except BaseException:
            self.close()
            raise

    def _bind(self, default_place: bool) -> None:
        path = self.path
        self._default_place = default_place
        if default_place:
            private_dir(path.parent, create=True)
        elif not path.parent.is_dir():
            raise ControlError(f"control: no directory {path.parent} for the socket {path} (create it)")
        lock = Path(f"{path}.lock")
        fd = self._lock(lock)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        if os.path.lexists(path):
            st = os.lstat(path)
            if not stat.S_ISSOCK(st.st_mode):
                raise ControlError(
                    f"{path} exists and is not a socket (remove it, or give another --control PATH)"
                )
            os.unlink(path)  # no lock holder: left by a watchd that was killed
            log.info("control: took over %s, left by a watchd that is gone", path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = sock
        old = os.umask(0o177)  # 0600 from the start (watchd's threads start later)
        try:
            sock.bind(os.fspath(path))
        except OSError as exc:
            raise ControlError(f"cannot make the control socket {path}: {exc.strerror}") from None
        finally:
            os.umask(old)
        sock.listen(8)

    def _lock(self, lock: Path) -> int:
        """Hold the lock file's exclusive lock (ControlInUse if another watchd does). The file is
        removed by the watchd that leaves, with the lock held: a lock taken on a file that is no
        longer at its path is let go and taken again on the new one."""
        for _ in range(10):
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except FileNotFoundError:
                if not self._default_place:
                    raise ControlError(f"cannot open {lock}: no directory {lock.parent}") from None
                private_dir(lock.parent, create=True)  # removed by a watchd that just left: again
                continue
            except OSError as exc:
                raise ControlError(f"cannot open {lock}: {exc.strerror}") from None
            self._lock_fd = fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ControlError(f"cannot lock {lock}: {exc.strerror}") from None
                other = _read_pid(fd)
                who = f"another watchd (pid {other})" if other else "another watchd"
                raise ControlInUse(
                    f"{who} is already running this config: its control socket is {lock.with_suffix('')} "
                    "(stop it first, or see what it does with: watchd status --socket "
                    f"{lock.with_suffix('')}; to run both, give this one another --control PATH)"
                ) from None
            try:
                same = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # removed by the watchd that just left: take the new file's lock
            self._lock_fd = None
        raise ControlError(f"cannot lock {lock}: it keeps being replaced")

    def start(self, handle: Handler) -> None:
        """Serve, answering each request with `handle`."""
        self._handle = handle
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(CLIENT_TIMEOUT + 1.0)
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        if self._lock_fd is not None:
            if self._sock is not None:  # ours: removed while still locked (see _lock)
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}.lock")
            os.close(self._lock_fd)
            if self._default_place:  # the last one out removes the directory (it is made again)
                with contextlib.suppress(OSError):
                    os.rmdir(self.path.parent)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _serve(self) -> None:
        assert self._sock is not None
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self._wake_r in ready:
                return
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    self._converse(conn)
                except OSError as exc:
                    log.debug("control: a connection failed: %s", exc)
                except Exception as exc:  # a bug: one line, the server goes on
                    log.error("control: could not answer a request: %s", exc, exc_info=log.isEnabledFor(10))

    def _converse(self, conn: socket.socket) -> None:
        uid = platform.current.peer_uid(conn)
        if uid is None or uid not in (os.geteuid(), 0):
            who = f"uid {uid}" if uid is not None else "a peer whose user cannot be told"
            log.warning(
                "control: refused a connection from %s (only watchd's user, uid %d, or root may control it)",
                who,
                os.geteuid(),
            )
            _send(
                conn,
                {"ok": False, "error": f"refused: {who} is not watchd's user (uid {os.geteuid()}) or root"},
            )
            return
        conn.settimeout(CLIENT_TIMEOUT)
        reader = conn.makefile("rb")
        while True:
            try:
                line = reader.readline(MAX_LINE + 1)
            except TimeoutError:
                return
            if not line:
                return
            if len(line) > MAX_LINE:
                _send(conn, {"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                return
            try:
                request = json.loads(line)
            except ValueError as exc:
                _send(conn, {"ok": False, "error": f"not a JSON object on one line: {exc}"})
                continue
            if not isinstance(request, dict):
                _send(conn, {"ok": False, "error": "a request is a JSON object"})
                continue
            assert self._handle is not None
            _send(conn, self._handle(request))


def _send(conn: socket.socket, answer: dict[str, object]) -> None:
    conn.sendall(json.dumps(answer, ensure_ascii=True).encode("ascii") + b"\n")


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------- the client


def request(path: Path, message: dict[str, object], timeout: float = ANSWER_TIMEOUT) -> dict[str, object]:
    """Send one request to the watchd at `path`; its answer. ControlError when there is no watchd
    there (or it cannot be reached), with what to do."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except FileNotFoundError:
            raise ControlError(f"no watchd is running there: no socket {path}") from None
        except ConnectionRefusedError:
            raise ControlError(f"no watchd is running there: {path} is left by one that is gone") from None
        except PermissionError:
            raise ControlError(
                f"permission denied connecting to {path}: "
                "only the user watchd runs as (or root) may control it"
            ) from None
        except OSError as exc:
            raise ControlError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        try:
            # refused at once (another user): its answer is waiting to be read all the same
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(json.dumps(message).encode() + b"\n")
            data = sock.makefile("rb").readline(MAX_LINE * 64)
        except TimeoutError:
            raise ControlError(f"watchd at {path} did not answer within {timeout:g} s") from None
        except OSError as exc:
            raise ControlError(f"lost the connection to {path}: {exc.strerror or exc}") from None
    if not data:
        raise ControlError(f"watchd at {path} closed the connection without an answer")
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ControlError(f"watchd at {path} answered something else than a JSON object")
    return answer


def running_sockets() -> list[Path]:
    """The sockets in this user's runtime directory that a watchd holds (its lock is taken)."""
    directory = runtime_dir()
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(".sock"):
            continue
        path = directory / name
        try:
            fd = os.open(f"{path}.lock", os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            found.append(path)  # held: a watchd runs there
        finally:
            os.close(fd)
    return found
