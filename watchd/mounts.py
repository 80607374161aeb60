"""Which filesystem a path is on (the platform's mount table): native events miss remote writes.

inotify (and FSEvents) only see changes made through this machine's kernel. On network and
shared filesystems (NFS, SMB/CIFS, 9p, sshfs, virtiofs...) a file written by another machine,
or by the host of a VM or container, raises no event: those roots need `poll: true`.
"""

from __future__ import annotations

from collections.abc import Iterable

# Filesystem types whose files can change without this kernel seeing it.
REMOTE_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "virtiofs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.glusterfs",
        "fuse.vmhgfs-fuse",
        "vboxsf",
        "vmhgfs",
        "afs",
        "ceph",
        "fuse.ceph",
        "glusterfs",
        "lustre",
        "davfs",
        "fuse.davfs2",
        "drvfs",  # WSL 1's view of Windows drives
        "fuse.gvfsd-fuse",  # GNOME's SMB/SFTP/WebDAV mounts
        # macOS, as statfs's f_fstypename names them (nfs and smbfs are above)
        "afpfs",
        "webdav",
        "osxfuse",  # FUSE for macOS before 4.0 (sshfs, rclone... mounts)
        "macfuse",
    }
)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040 ...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[tuple[str, str]]:
    """(mount point, filesystem type) for every line of Linux's mountinfo table (the platform's
    Linux side reads the file; this is the pure part, tested with samples)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        sep = fields.index("-")
        if sep + 1 >= len(fields):
            continue
        mounts.append((_unescape(fields[4]), fields[sep + 1]))
    return mounts


def innermost(path: str, mounts: Iterable[tuple[str, str]]) -> str | None:
    """The type of the innermost of `mounts` (mount point, type) containing `path`; of several
    on one point, the last (mounted over the others)."""
    best: tuple[int, str] | None = None
    for point, fstype in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fstype)
    return best[1] if best else None


def filesystem_type(path: str, mountinfo: str) -> str | None:
    """The type of the filesystem `path` is on, by Linux's `mountinfo` text. (This machine's answer,
    from its own mount table, is `platform.current.filesystem_type(path)`.)"""
    return innermost(path, parse_mountinfo(mountinfo))


def is_remote(fstype: str) -> bool:
    """Whether native events miss writes made by other machines on this filesystem type."""
    return fstype in REMOTE_TYPES or fstype.startswith("fuse.sshfs")
