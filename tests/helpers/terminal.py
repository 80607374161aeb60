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

import psutil

from helpers.procs import child_env, group_pids, stop_process, wait_for


class Pty:
    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.master, self.slave = os.openpty()
        self.proc = subprocess.Popen(
            ["setsid", "-w", "-c", *argv],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            cwd=cwd,
            env=child_env(env),
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
        app's, and watchd's keyboard sentinel (a `sleep` it puts into that group to learn what the
        keyboard sent it) has joined it: Ctrl-C and Ctrl-Z then reach the app and the sentinel.
        Typing them before that races with watchd handing the terminal over, and then with the
        sentinel's start (watchd gives the terminal first): an app that catches Ctrl-C and exits
        0 would look like any other exit."""
        try:
            foreground = os.tcgetpgrp(self.master)
            if foreground == os.getsid(foreground):
                return False
        except OSError:  # no foreground group (yet), or it just went
            return False
        return any(_is_sentinel(pid) for pid in group_pids(foreground))

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

    def wait(self, timeout: float = 10.0) -> int | None:
        """The program's exit status; None if it still runs after `timeout` (the test's assertion
        then shows the terminal's output)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            stop_process(self.proc)
        os.close(self.slave)
        self._closing.set()
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self.master)


def _is_sentinel(pid: int) -> bool:
    try:
        return psutil.Process(pid).cmdline() == ["sleep", str(2**31 - 1)]
    except psutil.Error:
        return False
