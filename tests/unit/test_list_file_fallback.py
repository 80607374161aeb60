"""WATCHD_CHANGED_FILE without processes: the anonymous file's contents and descriptor, and the
warn-once fallback when no file can be made (the failures injected)."""

from __future__ import annotations

import errno
import logging
import os
import tempfile

import pytest

from watchd.actions import process
from watchd.actions.process import ListFile, child_environment, write_list_file
from watchd.changes import Batch, Change, ChangeKind

PATHS = ("/srv/a.py", "/srv/new\nline.py", os.fsdecode(b"/srv/bad-\xff.py"))
NO_DIR = "No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp']"


@pytest.fixture
def no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither an anonymous file (as on macOS) nor a temporary one (a read-only root filesystem)."""

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        raise FileNotFoundError(errno.ENOENT, NO_DIR)

    monkeypatch.setattr(process, "anonymous_fd", lambda name: None)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(process, "_warned", set())


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memfd_create on this platform")
def test_the_list_is_an_anonymous_file_only_watchd_holds_until_handed_over() -> None:
    listed = write_list_file("api", PATHS)
    fd = listed.fd
    assert fd is not None
    try:
        assert listed.path == f"/dev/fd/{fd}"
        assert listed.pass_fds == (fd,)
        assert fd >= 10  # clear of the descriptors shell scripts use by number
        assert not os.get_inheritable(fd)  # only the child it is passed to gets it
        assert os.pread(fd, 1 << 16, 0) == b"/srv/a.py\0/srv/new\nline.py\0/srv/bad-\xff.py\0"
    finally:
        listed.handed_over()
    assert listed.fd is None
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    listed.discard()  # and again: nothing left to do


@pytest.mark.usefixtures("no_file")
def test_with_no_file_the_variable_is_unset_and_each_watch_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="watchd")
    for _ in range(3):
        assert write_list_file("api", PATHS) == ListFile(None)
    write_list_file("web", PATHS)
    said = f"no file can hold the changed paths (temporary file: {NO_DIR})"
    records = [r for r in caplog.records if said in r.getMessage()]
    assert [(r.levelno, r.getMessage().split(":")[0]) for r in records] == [
        (logging.WARNING, "api"),
        (logging.DEBUG, "api"),
        (logging.DEBUG, "api"),
        (logging.WARNING, "web"),
    ]
    assert records[0].getMessage() == (
        f"api: WATCHD_CHANGED_FILE is unset: {said}; WATCHD_PATH and WATCHD_CHANGED still name them "
        "(said once)"
    )


@pytest.mark.usefixtures("no_file")
def test_a_memfd_that_fails_is_named_in_the_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def emfile(name: str) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(process, "anonymous_fd", emfile)
    assert write_list_file("api", PATHS).path is None
    assert f"(memfd_create: Too many open files; temporary file: {NO_DIR})" in caplog.text


def test_no_list_file_means_no_variable_not_a_parent_watchds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHD_CHANGED_FILE", "/dev/fd/11")  # watchd run by another watchd
    batch = Batch("api", (Change(ChangeKind.MODIFIED, "/srv/a.py"),), 0.0, 0.0)
    env = child_environment("api", batch, None)
    assert "WATCHD_CHANGED_FILE" not in env
    assert env["WATCHD_PATH"] == "/srv/a.py"
    assert child_environment("api", batch, "/dev/fd/12")["WATCHD_CHANGED_FILE"] == "/dev/fd/12"
