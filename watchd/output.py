"""Several watches in one terminal: each line of a command's or an app's output starts with its
watch's name (`[api] ...`), as modd, air and Procfile runners do.

Only then does output pass through watchd: a child whose lines are prefixed writes (stdout and
stderr both) into a pipe, and a thread per child reads it, cuts it into lines and writes whole
lines to watchd's stdout (`Screen`), one writer at a time, so a line is never split between two
watches. A line still unfinished after `IDLE` seconds (a prompt: `name? `) is shown as it is; if
another watch writes before it is finished, that line is ended first, and its rest comes later
on a line of its own, prefixed again.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Mapping
from typing import IO

IDLE = 0.2  # seconds an unfinished line waits for its end before it is shown
MAX_LINE = 64 * 1024  # a longer line without a newline is shown in pieces of this size
READ_SIZE = 64 * 1024
DRAIN_WAIT = 0.5  # after a command ends, how long its last lines may take to reach the screen
# foreground colours for the names, one per watch in turn: cyan, yellow, magenta, green, blue, red
# and their bright forms
COLOURS = (36, 33, 35, 32, 34, 31, 96, 93, 95, 92, 94, 91)


def wants_colour(fd: int = 1, environ: Mapping[str, str] | None = None) -> bool:
    """Colour when `fd` is a terminal that supports it (not TERM=dumb) and NO_COLOR is unset."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM", "") in ("", "dumb"):
        return False
    try:
        return os.isatty(fd)
    except OSError:
        return False


def label(name: str, index: int, colour: bool) -> bytes:
    """`[api] `, coloured by the watch's place among the prefixed watches when `colour`."""
    if not colour:
        return f"[{name}] ".encode()
    return f"\x1b[{COLOURS[index % len(COLOURS)]}m[{name}]\x1b[0m ".encode()


class Screen:
    """watchd's stdout, shared by the watches whose output is prefixed: whole lines, one writer
    at a time, and a line left unfinished by one child ended before another child's lines."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self._open: object | None = None  # the stream whose line is unfinished on the screen
        self._prompt = False  # ... a prompt, which the user's Enter (echoed by the terminal) ends

    def write(self, stream: object, prefix: bytes, data: bytes, *, prompt: bool = False) -> None:
        """`data` from `stream`: whole lines, maybe followed by the start of one (no newline).
        `prompt`: the stream's child reads the terminal, so an unfinished line of its is a prompt
        the user ends with Enter: its next output starts a line of its own."""
        if not data:
            return
        with self._lock:
            out = bytearray()
            if self._open is not None and self._open is not stream:
                out += b"\n"  # another child's line is unfinished: end it, never write into it
                self._open = None
            lines = data.split(b"\n")
            for i, line in enumerate(lines):
                last = i == len(lines) - 1
                if last and not line:
                    break
                if not (i == 0 and self._open is stream and not self._prompt):  # (the rest of its line)
                    out += prefix
                out += line
                if not last:
                    out += b"\n"
            self._open = None if data.endswith(b"\n") else stream
            self._prompt = prompt
            self._write_all(bytes(out))

    def end(self, stream: object) -> None:
        """`stream` is done: a line of its left unfinished on the screen is ended."""
        with self._lock:
            if self._open is stream:
                self._open = None
                self._write_all(b"\n")

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except InterruptedError:
                continue
            except OSError:
                return  # the terminal is gone: the output is lost, as it would be written directly
            view = view[n:]


class Prefixer:
    """One watch's side: a pipe for each child it starts, read line by line onto the screen."""

    def __init__(self, name: str, screen: Screen, prefix: bytes) -> None:
        self.name = name
        self.screen = screen
        self.prefix = prefix

    def pipe(self, *, prompts: bool = False) -> Piped:
        """A pipe for a child's stdout and stderr (`Piped.file`, its write end); a thread reads the
        other end until every process holding it is gone. `prompts`: the child reads the terminal
        (see `Screen.write`)."""
        r, w = os.pipe()  # both close-on-exec: no other child inherits them
        try:
            thread = threading.Thread(
                target=self._pump, args=(r, prompts), name=f"watchd-out-{self.name}", daemon=True
            )
            thread.start()
        except BaseException:
            os.close(r)
            os.close(w)
            raise
        return Piped(open(w, "wb", buffering=0), thread)

    def _pump(self, fd: int, prompts: bool) -> None:
        stream = object()
        pending = b""  # read, not yet shown: the start of a line
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        try:
            while True:
                if pending and not poller.poll(IDLE * 1000):
                    self.screen.write(stream, self.prefix, pending, prompt=prompts)  # shown unfinished
                    pending = b""
                    continue
                try:
                    data = os.read(fd, READ_SIZE)
                except InterruptedError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    break
                pending += data
                cut = pending.rfind(b"\n") + 1
                if cut:
                    self.screen.write(stream, self.prefix, pending[:cut])
                    pending = pending[cut:]
                if len(pending) >= MAX_LINE:
                    self.screen.write(stream, self.prefix, pending)
                    pending = b""
            if pending:
                self.screen.write(stream, self.prefix, pending + b"\n")  # the last line, ended
            self.screen.end(stream)
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)


class Piped:
    """A child's output pipe: `file` is the end the child gets."""

    def __init__(self, file: IO[bytes], reader: threading.Thread) -> None:
        self.file = file
        self.reader = reader

    def close(self, wait: float = 0.0) -> None:
        """Close watchd's copy of the write end (the child has its own, once started); with `wait`,
        give the reader that long to show what is left (a command's last lines before its log line)."""
        self.file.close()
        if wait > 0:
            self.reader.join(wait)

    def __enter__(self) -> IO[bytes]:
        return self.file

    def __exit__(self, *exc: object) -> None:
        self.close(DRAIN_WAIT)
