"""sd_notify datagrams, to a path and to an abstract socket; environment handling; the unit file."""

from __future__ import annotations

import os
import socket

import pytest

from watchd.cli import ExitStatus
from watchd.systemd import CONFIG_ERROR_STATUS, Notifier, unit_file


def _listener(address: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + address[1:] if address.startswith("@") else address)
    s.settimeout(5)
    return s


@pytest.mark.parametrize("abstract", [False, True])
def test_messages_reach_the_socket(tmp_path: object, abstract: bool) -> None:
    address = f"@watchd-test-{os.getpid()}" if abstract else f"{tmp_path}/notify.sock"
    with _listener(address) as sock:
        n = Notifier(address)
        n.ready("2 watches;\nsecond line")
        assert sock.recv(4096) == b"READY=1\nSTATUS=2 watches; second line"
        n.reloading()
        lines = sock.recv(4096).decode().splitlines()
        assert lines[0] == "RELOADING=1"
        assert lines[1].startswith("MONOTONIC_USEC=") and int(lines[1].split("=")[1]) > 0
        n.stopping()
        assert sock.recv(4096) == b"STOPPING=1"
        n.close()


def test_from_environ_reads_and_removes_the_variables() -> None:
    env = {
        "NOTIFY_SOCKET": "/run/x",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": str(os.getpid()),
        "KEEP": "1",
    }
    n = Notifier.from_environ(env)
    assert n.address == "/run/x"
    assert n.watchdog_interval == 15.0
    assert env == {"KEEP": "1"}
    n.close()


@pytest.mark.parametrize(
    "env",
    [
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"},  # meant for another process
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {},
    ],
)
def test_no_watchdog_unless_meant_for_us(env: dict[str, str]) -> None:
    assert Notifier.from_environ(env).watchdog_interval is None


def test_without_a_socket_everything_is_a_no_op() -> None:
    n = Notifier.from_environ({})
    assert not n.enabled
    n.ready("x")
    n.watchdog()
    n.close()


def test_a_vanished_socket_is_not_fatal(tmp_path: object) -> None:
    n = Notifier(f"{tmp_path}/gone.sock")
    n.ready("x")  # ENOENT: logged at debug, never raised
    n.close()


def _service_section(unit: str) -> list[str]:
    return unit.split("[Service]\n", 1)[1].split("\n[", 1)[0].splitlines()


@pytest.mark.parametrize("template", [False, True])
def test_the_unit_does_not_restart_after_a_config_error(template: bool) -> None:
    """A config error at start exits 2 every time: restarting it every RestartSec is a loop."""
    assert CONFIG_ERROR_STATUS == ExitStatus.USAGE == 2
    service = _service_section(unit_file(template, "watchd"))
    assert "Restart=on-failure" in service
    assert "RestartPreventExitStatus=2" in service
