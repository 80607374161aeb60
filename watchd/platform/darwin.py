"""The macOS side of the platform seam (see watchd.platform): psutil for process facts (its macOS
backend runs on Macs in its own CI), portable POSIX calls for the rest. Other POSIX systems get
this side too."""

from __future__ import annotations

NAME = "darwin"

# ----------------------------------------------------------------------------- process identity

# ------------------------------------------------------------ pipes, files, sockets, filesystems
