"""Parsing a read of inotify events: every event in order, a file's repeated writes as one."""

from __future__ import annotations

import struct

from watchd.inotify import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_ISDIR,
    IN_MODIFY,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    InotifyTree,
)


def raw(*events: tuple[int, int, int, bytes]) -> bytes:
    """Events as the kernel lays them out: a header, then the name NUL-padded to 16 bytes."""
    out = b""
    for wd, mask, cookie, name in events:
        padded = name + b"\0" * (16 - len(name) % 16) if name else b""
        out += struct.pack("iIII", wd, mask, cookie, len(padded)) + padded
    return out


def test_every_event_in_order_with_its_name() -> None:
    events = [
        (1, IN_CREATE, 0, b"a.py"),
        (1, IN_MOVED_FROM, 7, b"b.py"),
        (2, IN_MOVED_TO, 7, b"c" * 16),  # a name that fills its padding exactly
        (2, IN_DELETE | IN_ISDIR, 0, b"d"),
        (3, IN_ATTRIB, 0, b""),  # about the watched directory itself
    ]
    assert InotifyTree._parse(raw(*events)) == events


def test_a_file_created_then_written_is_one_event_with_every_mask_and_others_stay() -> None:
    parsed = InotifyTree._parse(
        raw(
            (1, IN_CREATE, 0, b"a.py"),
            (1, IN_MODIFY, 0, b"a.py"),
            (1, IN_ATTRIB, 0, b"a.py"),
            (1, IN_CLOSE_WRITE, 0, b"a.py"),
            (1, IN_MODIFY, 0, b"b.py"),  # another file
            (1, IN_MODIFY, 0, b"b.py"),
            (2, IN_MODIFY, 0, b"b.py"),  # the same name in another directory
            (2, IN_DELETE, 0, b"b.py"),  # a delete is never folded in
            (2, IN_CREATE, 0, b"b.py"),
            (2, IN_MODIFY, 0, b"b.py"),
            (1, IN_CREATE | IN_ISDIR, 0, b"pkg"),  # a directory: its events all count
            (1, IN_ATTRIB | IN_ISDIR, 0, b"pkg"),
        )
    )
    # the masks are kept (or-ed): IN_CLOSE_WRITE says the writer is done with the file
    assert parsed == [
        (1, IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE, 0, b"a.py"),
        (1, IN_MODIFY, 0, b"b.py"),
        (2, IN_MODIFY, 0, b"b.py"),
        (2, IN_DELETE, 0, b"b.py"),
        (2, IN_CREATE | IN_MODIFY, 0, b"b.py"),
        (1, IN_CREATE | IN_ISDIR, 0, b"pkg"),
        (1, IN_ATTRIB | IN_ISDIR, 0, b"pkg"),
    ]
