"""watchd's controlling terminal, lent to one app at a time."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminal:
    """watchd's controlling terminal, which it lends to one app's process group at a time.

    Only when watchd's stdin is a terminal and watchd is in its foreground (not `watchd &`).
    `give` makes a group the foreground group (tcsetpgrp) so the keyboard's Ctrl-C, Ctrl-Z and
    input go to the app; `take_back` returns the foreground to watchd and restores the
    terminal modes saved at start (an app or pdb may leave echo off or the terminal raw), but
    only from that app: after Ctrl-Z and `bg` the terminal is the shell's, and stays so.
    SIGTTOU is blocked around each call: watchd may be a background group by then, and an
    ignored or blocked SIGTTOU is what lets a background process set the foreground.

    One run watch has it (`claim`): two apps cannot both read the keyboard.
    """

    def __init__(self, fd: int) -> None:
        import termios  # noqa: PLC0415 (only with a terminal)

        self.fd = fd
        self.pgrp = os.getpgrp()
        self._saved = termios.tcgetattr(fd)
        self._own: list[Any] | None = None  # watchd's own modes while it reads keys (--interactive)
        self._lock = threading.Lock()
        self._owner: str | None = None
        # A shell with job control started watchd as a job of its own: Ctrl-Z can stop watchd
        # and `fg` continue it. Without one (watchd leads its session, or shares its parent's
        # group), nothing would ever continue a stopped watchd.
        try:
            self.job_control = os.getsid(0) != self.pgrp and os.getpgid(os.getppid()) != self.pgrp
        except OSError:
            self.job_control = False

    @classmethod
    def detect(cls, fd: int = 0) -> Terminal | None:
        try:
            if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
                return None
            return cls(fd)
        except OSError:
            return None

    def claim(self, name: str) -> bool:
        """Reserve the terminal for watch `name` (it may claim it again: a reload); False if
        another watch has it."""
        with self._lock:
            if self._owner not in (None, name):
                return False
            self._owner = name
            return True

    def release(self, name: str) -> None:
        with self._lock:
            if self._owner == name:
                self._owner = None

    @contextlib.contextmanager
    def _no_ttou(self) -> Iterator[None]:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def foreground(self) -> int | None:
        try:
            return os.tcgetpgrp(self.fd)
        except OSError:
            return None

    def give(self, pgid: int) -> None:
        with self._lock, self._no_ttou(), contextlib.suppress(OSError):
            os.tcsetpgrp(self.fd, pgid)

    def take_back(self, pgid: int | None = None) -> None:
        """The foreground back to watchd, and the saved modes, if the foreground is `pgid`'s
        (the app's we lent it to) or already watchd's; else leave the terminal alone."""
        import termios  # noqa: PLC0415

        with self._lock, self._no_ttou(), contextlib.suppress(OSError, termios.error):
            now = os.tcgetpgrp(self.fd)
            if now not in (pgid, self.pgrp):
                return
            if now != self.pgrp:
                os.tcsetpgrp(self.fd, self.pgrp)
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._own or self._saved)

    # -------------------------------------------------------------- keys (--interactive)

    def keys_mode(self) -> None:
        """Keys reach watchd one by one, without Enter and without echo; Ctrl-C and Ctrl-Z are
        still signals (ISIG stays on). `restore` undoes it."""
        import termios  # noqa: PLC0415

        attrs = termios.tcgetattr(self.fd)
        attrs[3] &= ~(termios.ICANON | termios.ECHO)
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        with self._lock, self._no_ttou(), contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
            self._own = termios.tcgetattr(self.fd)

    def keep_keys_mode(self) -> None:
        """Set watchd's key modes again if something reset them while watchd holds the terminal
        (a shell after Ctrl-Z and fg)."""
        import termios  # noqa: PLC0415

        if self._own is None:
            return
        with self._lock, self._no_ttou(), contextlib.suppress(OSError, termios.error):
            if os.tcgetpgrp(self.fd) == self.pgrp and termios.tcgetattr(self.fd) != self._own:
                termios.tcsetattr(self.fd, termios.TCSANOW, self._own)

    def read_key(self) -> bytes | None:
        """What was typed, if watchd holds the terminal's foreground (never an app's input, never
        a read that would stop watchd); None if it does not; b"" at the terminal's end."""
        with self._lock:
            try:
                if os.tcgetpgrp(self.fd) != self.pgrp:
                    return None
                return os.read(self.fd, 64)
            except OSError:
                return b""

    def restore(self) -> None:
        """The modes watchd found at start (on every way out of --interactive)."""
        import termios  # noqa: PLC0415

        with self._lock, self._no_ttou(), contextlib.suppress(OSError, termios.error):
            self._own = None
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
