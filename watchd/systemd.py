"""systemd integration: sd_notify over $NOTIFY_SOCKET, watchdog pings, and unit files.

The notify protocol is one datagram of newline-separated KEY=VALUE lines to the AF_UNIX socket
named by $NOTIFY_SOCKET (a path, or an abstract name starting with '@'). Without the variable
every call is a no-op, so the daemon needs no special cases.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import time
from collections.abc import MutableMapping

from watchd.model import DEFAULT_STOP_TIMEOUT, Stop

log = logging.getLogger(__name__)

_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends sd_notify messages; silent when not started by systemd with Type=notify."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_interval = (
            watchdog_usec / 2_000_000 if watchdog_usec else None
        )  # ping at half the timeout
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """Read (and remove, so commands watchd starts do not inherit them) the systemd variables."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if raw and (not pid or pid == str(os.getpid())):
            try:
                usec = int(raw) or None
            except ValueError:
                usec = None
        for key in _ENV:
            env.pop(key, None)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> None:
        if self._sock is None or self.address is None:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._sock.sendto("\n".join(lines).encode("utf-8", "replace"), target)
        except OSError as exc:  # systemd gone or socket full: never fatal
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str | None = None) -> None:
        self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


_STOP_MARGIN = 3  # seconds beyond a stop: watchd's own exit, the journal, a slow machine

# watchd's exit status for a config or usage error (the CLI's ExitStatus.USAGE; the CLI imports this
# module, so the value is repeated here and a test keeps the two equal). The unit does not restart
# on it: an invalid config at start would otherwise fail again every RestartSec, for ever.
CONFIG_ERROR_STATUS = 2


def unit_file(
    template: bool,
    command: str | None = None,
    *,
    config: str | None = None,
    stop_timeout: float | None = None,
) -> str:
    """A user unit; by default for this installation of watchd (ExecStart runs this interpreter).

    `template` gives watchd@.service (one instance per %E/watchd/NAME.yaml), else watchd.service
    for `config` (default %E/watchd/config.yaml). %E is $XDG_CONFIG_HOME, normally ~/.config.
    TimeoutStopSec leaves room for the longest `stop_timeout` of the apps and commands watchd
    stops on its way out, so systemd never KILLs watchd while it is stopping them gracefully.
    RestartPreventExitStatus keeps a config error at start from restarting in a loop.
    """
    command = command or f"{sys.executable} -m watchd"
    if template:
        config = "%E/watchd/%i.yaml"
    elif config is None:
        config = "%E/watchd/config.yaml"
    # the longest a stop of watchd can take: the stop timeout, then SIGKILL and its wait
    longest = Stop(timeout=max(stop_timeout or 0.0, DEFAULT_STOP_TIMEOUT)).grace
    timeout_stop = math.ceil(longest) + _STOP_MARGIN
    return UNIT.format(
        exec_start=f"{command} --config {config}",
        config=config,
        config_error=CONFIG_ERROR_STATUS,
        timeout_stop=f"{timeout_stop}s",
    )


UNIT = """\
[Unit]
Description=watchd: reload servers, run commands, restart apps when files change ({config})

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
# SIGHUP re-reads the config; an invalid one is reported and the running watches are kept.
ExecReload=kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
# Status 2 is a config error (or a listen address in use): a restart would only fail again.
RestartPreventExitStatus={config_error}
# watchd pings the service manager at half this interval from its main loop.
WatchdogSec=30s
# Room for the apps' and commands' stop_timeout (then KILL) while watchd stops them.
TimeoutStopSec={timeout_stop}

[Install]
WantedBy=default.target
"""
