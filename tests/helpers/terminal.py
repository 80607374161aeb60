"""A real pseudo-terminal for terminal behaviour: a program runs with it as its controlling
terminal (util-linux `setsid -c`), the test types into it and reads what it shows."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import termios
import threading
from collections.abc import Sequence
from pathlib import Path

from helpers.procs import profiled, stop_process, wait_for


class Pty:
    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.master, self.slave = os.openpty()
        self.proc = subprocess.Popen(
            ["setsid", "-w", "-c", *argv],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            cwd=cwd,
            env=profiled(env),
        )
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: the last program with the terminal open is gone
                return
            if not data:
                return
            with self._lock:
                self._buf.extend(data)

    def output(self) -> str:
        with self._lock:
            return self._buf.decode("utf-8", "replace")

    def wait_for(self, text: str, count: int = 1, timeout: float = 10.0) -> bool:
        return wait_for(lambda: self.output().count(text) >= count, timeout)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def app_has_terminal(self) -> bool:
        """True once the terminal's foreground group is not its session leader's (watchd's) but an
        app's: what the keyboard's Ctrl-C and Ctrl-Z then reach. Typing them before that races
        with watchd handing the terminal over."""
        try:
            foreground = os.tcgetpgrp(self.master)
            return foreground != os.getsid(foreground)
        except OSError:  # no foreground group (yet), or it just went
            return False

    def wait_app_has_terminal(self, timeout: float = 10.0) -> bool:
        return wait_for(self.app_has_terminal, timeout)

    def echo_on(self) -> bool:
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def cooked(self) -> bool:
        """Echo and line editing on: the modes a shell expects back."""
        lflag = termios.tcgetattr(self.slave)[3]
        return bool(lflag & termios.ECHO) and bool(lflag & termios.ICANON)

    def foreground(self) -> int:
        return os.tcgetpgrp(self.master)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            stop_process(self.proc)
        os.close(self.slave)
        self._closing.set()
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)
