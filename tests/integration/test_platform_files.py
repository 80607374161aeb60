"""The platform seam's pipes, files, filesystems and sockets, both sides on this machine: Linux's
as watchd uses it here, and the portable side macOS gets, wherever its calls run on Linux (where
they cannot -- F_GETPATH -- its logic runs against a stand-in for the one missing call)."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest

from watchd import mounts, platform
from watchd.actions import imports, process
from watchd.actions.imports import HELLO, ImportReports
from watchd.platform import darwin, linux
from watchd.sockets import Listeners, bind, queued
from watchd.values import parse_listen


def closed_on_exec(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) and not os.get_inheritable(fd)


def test_cloexec_pipe_is_a_pipe_no_child_inherits(side: ModuleType) -> None:
    r, w = side.cloexec_pipe()
    try:
        assert closed_on_exec(r) and closed_on_exec(w)
        os.write(w, b"x")
        assert os.read(r, 1) == b"x"
    finally:
        os.close(r)
        os.close(w)


def test_the_portable_pipe_needs_no_pipe2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pipe2", raising=False)
    r, w = darwin.cloexec_pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(AttributeError):  # what macOS's Python said to the old imports.py
        linux.cloexec_pipe()


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memfd_create on this platform")
def test_linux_memfd_is_an_anonymous_close_on_exec_file() -> None:
    fd = linux.memfd("watchd-test")
    assert fd is not None
    try:
        assert closed_on_exec(fd)
        os.write(fd, b"a\0")
        assert os.pread(fd, 8, 0) == b"a\0"
    finally:
        os.close(fd)


def test_the_portable_side_has_no_anonymous_file_and_the_list_goes_to_a_temporary_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert darwin.memfd("watchd-test") is None
    monkeypatch.setattr(platform, "current", darwin)
    assert process.anonymous_fd("watchd-changed") is None
    listed = process.write_list_file("api", ("/srv/a.py",))
    temp = listed.temp
    try:
        assert listed.fd is None and temp is not None and listed.path == temp
        assert Path(temp).read_bytes() == b"/srv/a.py\0"
    finally:
        listed.discard()
    assert temp is not None and not Path(temp).exists()


@pytest.mark.linux_only("/proc/self/fd")
def test_linux_fd_path_names_the_file_and_not_a_pipe(tmp_path: Path) -> None:
    path = tmp_path / "watchd.log"
    with path.open("w") as f:
        assert linux.fd_path(f.fileno()) == str(path)
    r, w = os.pipe()
    try:
        assert linux.fd_path(r) is None  # "pipe:[123]"
    finally:
        os.close(r)
        os.close(w)
    assert linux.fd_path(1 << 20) is None  # not open


def test_darwin_fd_path_without_f_getpath_is_none(tmp_path: Path) -> None:
    with (tmp_path / "watchd.log").open("w") as f:
        assert darwin.fd_path(f.fileno()) == (None if not hasattr(fcntl, "F_GETPATH") else str(f.name))


@pytest.mark.linux_only("fakes F_GETPATH with Linux's /proc/self/fd")
def test_darwin_fd_path_reads_what_f_getpath_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F_GETPATH fills a MAXPATHLEN buffer with a NUL-terminated path (fcntl(2) on macOS): a
    stand-in answers as it does, so the side's own code runs on the real descriptor."""
    path = tmp_path / "watchd.log"
    real = fcntl.fcntl
    f_getpath = 50  # macOS's value

    def fake(fd: int, cmd: int, arg: object = 0) -> object:
        if cmd != f_getpath:
            return real(fd, cmd, arg)  # type: ignore[call-overload]
        assert isinstance(arg, bytes) and len(arg) == 1024
        target = linux.fd_path(fd)
        if target is None:
            raise OSError(9, "Bad file descriptor")
        return os.fsencode(target).ljust(len(arg), b"\0")

    monkeypatch.setattr(fcntl, "F_GETPATH", f_getpath, raising=False)
    monkeypatch.setattr(fcntl, "fcntl", fake)
    with path.open("w") as f:
        assert darwin.fd_path(f.fileno()) == str(path)
    assert darwin.fd_path(1 << 20) is None


def test_own_output_files_through_either_side(side: ModuleType, tmp_path: Path) -> None:
    from watchd.watching import own_output_files  # noqa: PLC0415

    log = tmp_path / "watchd.log"
    with log.open("w") as f:
        found = own_output_files((f.fileno(),))
    expected = {str(log)} if side is linux or hasattr(fcntl, "F_GETPATH") else set()
    assert found == expected


@pytest.mark.linux_only("compares with Linux's /proc/self/mountinfo")
@pytest.mark.parametrize("path", ["/", "/proc/self", "TMP"])
def test_both_sides_agree_on_the_filesystem_type(path: str, tmp_path: Path) -> None:
    """psutil's partitions (statfs's f_fstypename on macOS; the mount table here) and mountinfo
    name the same filesystem for the same path."""
    where = os.path.realpath(tmp_path if path == "TMP" else path)
    fstype = linux.filesystem_type(where)
    assert fstype is not None
    assert darwin.filesystem_type(where) == fstype
    if path == "/proc/self":
        assert fstype == "proc"


@pytest.mark.usefixtures("side")  # each side of the seam as platform.current in turn
def test_the_remote_filesystem_check_asks_the_platform() -> None:
    assert platform.current.filesystem_type("/proc/self/fd") == "proc"
    assert not mounts.is_remote("proc")


def test_darwin_filesystem_type_is_none_when_partitions_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psutil  # noqa: PLC0415

    def denied(all: bool = False) -> list[object]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(psutil, "disk_partitions", denied)
    assert darwin.filesystem_type("/") is None


# ------------------------------------------------------------------ the import hook's pipe


def test_import_reports_work_without_pipe2_on_the_portable_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS's os has no pipe2: the old imports.py raised AttributeError there, a traceback for
    `watchd -- python app.py`. Through the seam's portable side the reports arrive."""
    monkeypatch.delattr(os, "pipe2", raising=False)
    monkeypatch.setattr(platform, "current", darwin)
    got: list[list[str]] = []
    arrived = threading.Event()

    def on_files(paths: list[str]) -> None:
        got.append(paths)
        arrived.set()

    reports = ImportReports("app", on_files)
    try:
        assert reports.fd >= 10 and closed_on_exec(reports.fd)
        os.write(reports.fd, HELLO + b"\0/srv/lib/util.py\0")
        assert arrived.wait(5)
        assert reports.loaded.is_set()
        assert got == [["/srv/lib/util.py"]]
    finally:
        reports.close()


def test_import_reports_without_pipe2_on_the_linux_side_fail_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failure the portable side avoids (shown with Linux's side and no pipe2)."""
    monkeypatch.delattr(os, "pipe2", raising=False)
    monkeypatch.setattr(platform, "current", linux)
    with pytest.raises(AttributeError, match="pipe2"):
        ImportReports("app", lambda paths: None)
    assert imports.HOOK_DIR  # the module itself imports fine everywhere


# ------------------------------------------------------------------ listening sockets


def test_without_steering_one_socket_is_shared_and_verbose_mode_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="watchd")
    monkeypatch.setattr(platform, "current", darwin)
    registry = Listeners()
    address = parse_listen("127.0.0.1:0")
    try:
        listener = registry.acquire(address)
        assert registry.acquire(address) is listener  # a reload: the same socket, said no more
        assert not listener.steerable
        assert listener.successor() is None and listener.hand_over() is None
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
            accepted, _ = listener.sock.accept()
            accepted.close()
        said = [r.getMessage() for r in caplog.records if "no connection steering" in r.getMessage()]
        assert said == [
            f"127.0.0.1:{listener.port}: one socket shared by an app and the next (no connection steering "
            "on darwin): connections made during a restart wait in its backlog"
        ]
        assert all(r.levelno == logging.DEBUG for r in caplog.records if "steering" in r.getMessage())
    finally:
        registry.close()


def test_the_portable_side_refuses_to_steer_and_cannot_count_a_queue() -> None:
    assert linux.STEERING and not darwin.STEERING
    listener = bind(parse_listen("127.0.0.1:0"))
    try:
        with pytest.raises(OSError, match="no connection steering"):
            darwin.steer(listener.sock, 0)
        assert darwin.accept_queue(listener.sock) == 0
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
            # Linux's tcp_info answers for a listener: the one connection waiting to be accepted
            assert linux.accept_queue(listener.sock) == 1
            # (through the side in use: none counted on the portable one, as in the macOS profile)
            assert queued(listener.sock) == (1 if sys.platform == "linux" else 0)
    finally:
        listener.close()
