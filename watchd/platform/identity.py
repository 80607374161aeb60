"""What both sides of the platform seam say about a process: one value type, so that the pidfile
checks, reload confirmation and the stopping of process groups read the same facts on Linux
(/proc) and on macOS (psutil)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process at one moment.

    `started` is when it started, in seconds since boot on the clock of the side's `uptime()`:
    exact and stable for one process, so the same PID with another `started` is another process
    (the PID was reused)."""

    pid: int
    ppid: int
    name: str  # the system's short name for it (Linux's comm, macOS's p_comm), for log lines
    state: str  # one letter as Linux's ps shows it: R, S, D, T and t (stopped), Z (zombie), X ...
    started: float

    @property
    def exited(self) -> bool:
        """Zombie or dead: it runs nothing, only its reaping is pending (kill(pid, 0) still succeeds)."""
        return self.state in ("Z", "X", "x")

    @property
    def stopped(self) -> bool:
        """Stopped by a signal (SIGSTOP, SIGTSTP) or a tracer."""
        return self.state in ("T", "t")
