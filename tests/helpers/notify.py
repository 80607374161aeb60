"""What systemd does for Type=notify: a datagram socket a service reports to through $NOTIFY_SOCKET."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from helpers.procs import wait_for


class NotifySocket:
    """What systemd does: a datagram socket watchd reports to through $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def _pump(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait(
        self, key: str, value: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> dict[str, str]:
        """The `count`-th message carrying `key` (=`value`), waiting up to `timeout`."""

        def found() -> list[dict[str, str]]:
            self._pump()
            return [m for _, m in self.messages if key in m and (value is None or m[key] == value)]

        assert wait_for(lambda: len(found()) >= count, timeout=timeout), f"no {key}: {self.messages}"
        return found()[count - 1]

    def all(self, key: str) -> list[dict[str, str]]:
        self._pump()
        return [m for _, m in self.messages if key in m]

    def close(self) -> None:
        self.sock.close()
