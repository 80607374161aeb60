"""The Linux side of the platform seam (see watchd.platform): /proc, pidfd, memfd, inotify's libc."""

from __future__ import annotations

NAME = "linux"

# ----------------------------------------------------------------------------- process identity

# ------------------------------------------------------------ pipes, files, sockets, filesystems
