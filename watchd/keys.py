"""Keys in the terminal (`--interactive`, `-I`): r acts now, p pauses and resumes, c clears the
screen, q quits, ? lists the keys.

Under -I the keyboard is watchd's: the terminal is in cbreak mode (keys without Enter, no echo;
Ctrl-C and Ctrl-Z stay signals), and no app is given the terminal (apps read /dev/null, as under
systemd), so no key an app reads is ever taken from it. A thread reads the keys, and only while
watchd's process group is the terminal's foreground (`Terminal.read_key`): after the shell's `bg`
nothing is read (a read would stop watchd). The modes watchd found are restored on every way out.
"""

from __future__ import annotations

import logging
import select
import signal
import threading
from collections.abc import Callable

from watchd.terminal import Terminal

log = logging.getLogger(__name__)

HELP = "keys: r run now, p pause/resume, c clear the screen, q quit, ? this list"
_LOOK = 0.1  # seconds between looks at the terminal while nothing is typed


class Keyboard:
    """Reads keys on its own thread and hands each to `on_key` (which must not block)."""

    def __init__(self, terminal: Terminal, on_key: Callable[[str], None]) -> None:
        self.terminal = terminal
        self.on_key = on_key
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchd-keys", daemon=True)

    def start(self) -> None:
        self.terminal.keys_mode()
        self._thread.start()

    def close(self) -> None:
        """Stop reading, and give the terminal its modes back (idempotent)."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        self.terminal.restore()

    def _run(self) -> None:
        # a read from the background must fail (EIO), never stop watchd (SIGTTIN)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTIN, signal.SIGTTOU})
        poller = select.poll()
        poller.register(self.terminal.fd, select.POLLIN)
        while not self._closing.is_set():
            if not poller.poll(_LOOK * 1000):
                self.terminal.keep_keys_mode()
                continue
            data = self.terminal.read_key()
            if data is None:  # typed while watchd is not in the foreground: not ours to read
                self._closing.wait(_LOOK)
                continue
            if not data:
                log.debug("the terminal is gone: no more keys")
                return
            for key in keys_in(data):
                self.on_key(key)


def keys_in(data: bytes) -> list[str]:
    """The keys in what one read returned; an escape sequence (an arrow key) is none."""
    if data.startswith(b"\x1b"):
        return []
    return [chr(b) for b in data if 32 <= b < 127 or b in (10, 13)]
