"""Prefixed output of several watches (watchd.output.Screen): whole lines, each with its watch's
name, and a line one child left unfinished ended before another child's lines; and the keys -I
reads out of what one read of the terminal returns."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from watchd.keys import keys_in
from watchd.output import Screen, label, wants_colour


@pytest.fixture
def screen() -> Iterator[tuple[Screen, int]]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield Screen(w), r
    os.close(r)
    os.close(w)


def shown(r: int) -> bytes:
    try:
        return os.read(r, 65536)
    except BlockingIOError:
        return b""


def test_each_line_gets_its_watchs_name(screen: tuple[Screen, int]) -> None:
    s, r = screen
    s.write("a", b"[api] ", b"one\ntwo\n")
    s.write("b", b"[css] ", b"three\n")
    assert shown(r) == b"[api] one\n[api] two\n[css] three\n"


def test_an_unfinished_line_is_ended_before_another_watch_writes(screen: tuple[Screen, int]) -> None:
    s, r = screen
    s.write("a", b"[api] ", b"name? ")  # a prompt, shown unfinished
    s.write("a", b"[api] ", b"bob\n")  # its own rest: no second prefix
    s.write("a", b"[api] ", b"half")
    s.write("b", b"[css] ", b"built\n")  # never inside api's line
    s.write("a", b"[api] ", b" more\n")  # the rest of the line, on a line of its own
    assert shown(r) == b"[api] name? bob\n[api] half\n[css] built\n[api]  more\n"


def test_a_prompt_of_an_app_that_reads_the_terminal_is_ended_by_the_users_enter(
    screen: tuple[Screen, int],
) -> None:
    s, r = screen
    s.write("a", b"[api] ", b"name? ", prompt=True)
    s.write("a", b"[api] ", b"hello bob\n")  # the terminal echoed "bob" and the newline
    assert shown(r) == b"[api] name? [api] hello bob\n"


def test_a_child_that_ends_mid_line_leaves_the_line_ended(screen: tuple[Screen, int]) -> None:
    s, r = screen
    s.write("a", b"[api] ", b"bye")
    s.end("a")
    s.end("b")  # nothing of b's is open: nothing written
    assert shown(r) == b"[api] bye\n"


def test_labels_are_coloured_per_watch_only_when_asked() -> None:
    assert label("api", 0, False) == b"[api] "
    assert label("api", 0, True) == b"\x1b[36m[api]\x1b[0m "
    assert label("css", 1, True) != label("api", 0, True)
    assert wants_colour(-1, {"TERM": "xterm"}) is False  # not a terminal
    assert wants_colour(1, {"TERM": "dumb"}) is False
    assert wants_colour(1, {"TERM": "xterm", "NO_COLOR": "1"}) is False


def test_keys_in_a_read() -> None:
    assert keys_in(b"r") == ["r"]
    assert keys_in(b"rq") == ["r", "q"]  # typed faster than one read
    assert keys_in(b"\x1b[A") == []  # an arrow key: no key of watchd's
    assert keys_in(b"\x00p") == ["p"]
