"""Every OS-specific call watchd makes, behind one seam with two sides, chosen once by sys.platform:
`linux` (/proc, pidfd, memfd, SO_REUSEPORT steering, cgroups, inotify) and `darwin` (psutil, and
the portable POSIX calls; also what other POSIX systems get).

Nothing outside this package opens /proc, loads libc symbols with ctypes, or calls `pidfd_*`,
`pipe2`, `waitid`, `prctl` or `memfd_create`. Both sides define the same public names with the same
signatures (a unit test holds them to it); callers use `platform.current.NAME(...)`.
"""

from __future__ import annotations

import sys

if sys.platform == "linux":
    from watchd.platform import linux as current
else:  # macOS, and the other POSIX systems: the portable side
    from watchd.platform import darwin as current

__all__ = ["current"]
