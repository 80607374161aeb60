"""Paths relative to a watched root: one answer for the watcher, the inotify tree and git's rules."""

from __future__ import annotations

import os


def under(path: str, root: str) -> str | None:
    """`path` relative to `root` ('/'-separated), '' for the root itself, None if outside."""
    if path == root:
        return ""
    prefix = root if root.endswith(os.sep) else root + os.sep
    if path.startswith(prefix):
        rel = path[len(prefix) :]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")
    return None
