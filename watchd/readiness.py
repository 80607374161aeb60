"""When the next app is ready for connections: with `listen`, watchd moves them to it only then.

The next app starts on a socket of its own in the listener's SO_REUSEPORT group, which gets no
connection yet (`watchd.sockets.Listener.successor`). It is ready when:

- it accepted watchd's **probe**: one connection that only that socket gets (a steering rule for
  the probe's source address and port), made before the app starts and seen in the socket's
  accept queue, with nothing to read but an end of file. Its leaving the queue is the app
  accepting. Servers answer an empty connection by closing it, and log nothing;
- or, where no probe can be made, it sent `READY=1` on the `NOTIFY_SOCKET` watchd gave it
  (systemd's notify protocol, which gunicorn speaks by itself, and any app can in two lines),
  once an earlier app of the watch has shown that it sends it. Where a probe was made, the
  accept decides: gunicorn sends READY=1 when its master has booted, before a worker has loaded
  the app, and a request sent then would wait for that.

Where no sign can be waited for (no steering, a Unix socket, no probe and an app not known to send
READY=1) the app is "ready" at once: connections move when the debounce ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import socket
import tempfile
import time

from watchd.sockets import queued

log = logging.getLogger(__name__)

ACCEPTED = "accepted a connection"
NOTIFIED = "sent READY=1"
FAILED = "answered 500 Internal Server Error"  # to the HTTP probe: it serves only its import error
ANSWER_WAIT = 1.0  # after its accept, how long an HTTP probe's answer is waited for
# Asked of a Werkzeug server (listen_env: werkzeug): WERKZEUG_RUN_MAIN, which Werkzeug needs to take
# the socket, also makes `flask run` serve an import error as a 500 on every request instead of
# exiting. `OPTIONS *` reaches no view: a working app answers 404, a broken one 500.
HTTP_PROBE = b"OPTIONS * HTTP/1.0\r\nUser-Agent: watchd-readiness\r\nConnection: close\r\n\r\n"
_DATAGRAM = 4096  # a notify message is a few short lines


class NotifySocket:
    """A datagram socket that one app sends systemd notify messages to (its `NOTIFY_SOCKET`), in
    a directory of watchd's own (mode 0700): nothing but the app's processes know its path."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="watchd-notify-")
        self.path = os.path.join(self._dir, "notify")
        try:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        try:
            self.sock.bind(self.path)
            self.sock.setblocking(False)
        except OSError:
            self.close()
            raise

    def ready(self) -> bool:
        """Whether a message received so far said READY=1 (the messages are read and dropped)."""
        said = False
        while True:
            try:
                data = self.sock.recv(_DATAGRAM)
            except OSError:  # none left (BlockingIOError), or the socket is gone
                return said
            said = said or b"READY=1" in data.split(b"\n")

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def open_notify_socket() -> NotifySocket | None:
    try:
        return NotifySocket()
    except OSError as exc:
        log.debug("no NOTIFY_SOCKET for the next app: %s", exc)
        return None


class Readiness:
    """One starting app's signs of serving: `check()` says which came, or None (not yet)."""

    def __init__(
        self,
        sock: socket.socket,
        probe: socket.socket | None,
        notify: NotifySocket | None,
        *,
        notify_expected: bool = False,
        http: bool = False,
    ) -> None:
        self.sock = sock  # the app's listening socket
        self.probe = probe  # watchd's end of the probe connection, in `sock`'s queue (Listener.probe)
        self.notify = notify
        self.notify_expected = notify_expected  # an earlier app of this watch sent READY=1
        self.notified = False  # this one did
        self.http = http  # the probe carries HTTP_PROBE: its answer counts too
        self._accepted_at: float | None = None
        self._answer = b""
        self._poll = select.poll()
        for s in (probe, notify.sock if notify is not None else None):
            if s is not None:
                self._poll.register(s, select.POLLIN)

    @property
    def blind(self) -> bool:
        """No sign can be waited for: the caller takes the app as ready. Without a probe, READY=1
        is waited for only from an app known to send it (an earlier start of the watch did)."""
        return self.probe is None and not (self.notify is not None and self.notify_expected)

    def check(self) -> str | None:
        if self.notify is not None and self.notify.ready():
            self.notified = True
        probe = self.probe
        if probe is None:
            return NOTIFIED if self.notified else None
        if queued(self.sock):
            return None
        # it was in the queue (Listener.probe saw it there) and left it: accepted
        if not self.http:
            return ACCEPTED
        return self._answered(probe)

    def _answered(self, probe: socket.socket) -> str | None:
        """After the accept of an HTTP probe: FAILED for a 500, else ACCEPTED once its status
        line came, the app closed it, or it did not answer within ANSWER_WAIT."""
        now = time.monotonic()
        if self._accepted_at is None:
            self._accepted_at = now
        while b"\r\n" not in self._answer and len(self._answer) < _DATAGRAM:
            try:
                data = probe.recv(_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return ACCEPTED if now - self._accepted_at >= ANSWER_WAIT else None
            except OSError:
                return ACCEPTED  # reset: not an answer
            if not data:
                return ACCEPTED  # closed without one
            self._answer += data
        status = self._answer.split(b"\r\n", 1)[0].split()
        return (
            FAILED if len(status) > 1 and status[0].startswith(b"HTTP/") and status[1] == b"500" else ACCEPTED
        )

    def wait(self, timeout: float) -> None:
        """Until a sign may have come (a datagram, the app closing the probe), at most `timeout` s."""
        self._poll.poll(timeout * 1000)

    def close(self) -> None:
        if self.probe is not None:
            with contextlib.suppress(OSError):
                self.probe.close()
            self.probe = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None
