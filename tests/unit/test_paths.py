"""One root-relative path helper, shared by the watcher, the inotify tree and git's rules."""

from __future__ import annotations

import pytest

from watchd.paths import under


@pytest.mark.parametrize(
    ("path", "root", "rel"),
    [
        ("/srv/app", "/srv/app", ""),  # the root itself
        ("/srv/app/a.py", "/srv/app", "a.py"),
        ("/srv/app/pkg/a.py", "/srv/app", "pkg/a.py"),
        ("/srv/app/pkg/a.py", "/srv/app/", "pkg/a.py"),  # a root given with its trailing slash
        ("/srv/application/a.py", "/srv/app", None),  # a sibling sharing the root's name as a prefix
        ("/srv/a.py", "/srv/app", None),  # above it
        ("/etc/passwd", "/", "etc/passwd"),  # below the filesystem's root
        ("/", "/", ""),
    ],
)
def test_a_path_relative_to_its_root(path: str, root: str, rel: str | None) -> None:
    assert under(path, root) == rel
