"""mounts: which filesystem a path is on, from mountinfo text (no /proc read: samples only)."""

from __future__ import annotations

import pytest

from watchd.model import Poll
from watchd.mounts import filesystem_type, innermost, is_remote, parse_mountinfo
from watchd.watching import PollDecision, poll_decision

# A workstation: ext4 root, tmpfs /tmp, network and VM shares, nested and stacked mounts.
# Fields: ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER-OPTIONS;
# the kernel escapes space, tab, newline and backslash in paths as \040 \011 \012 \134.
HOST = """\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
30 22 0:27 / /tmp rw,nosuid,nodev shared:12 - tmpfs tmpfs rw,size=8118108k,nr_inodes=1048576
31 22 259:3 / /home rw,relatime shared:20 - ext4 /dev/nvme0n1p3 rw
40 22 0:45 / /mnt/nfs rw,relatime shared:30 - nfs4 files:/export/home rw,vers=4.2,hard,proto=tcp,addr=10.0.0.5
41 40 259:4 / /mnt/nfs/local rw,relatime shared:31 - ext4 /dev/nvme1n1p1 rw
42 22 0:46 / /mnt/smb rw,relatime shared:32 - cifs //nas/share rw,vers=3.1.1,cache=strict,uid=1000
43 22 0:47 / /mnt/host rw,noatime - 9p C:\\134 rw,dirsync,aname=drvfs;path=C:\\;uid=1000;gid=1000;trans=virtio
44 31 0:48 / /home/alice/remote rw,nosuid,nodev shared:40 - fuse.sshfs alice@build:/srv rw,user_id=1000
45 22 0:49 / /mnt/shared rw,relatime shared:41 - virtiofs hostshare rw
46 22 0:50 / /mnt/my\\040share rw,relatime shared:42 - cifs //nas/my\\040share rw,vers=3.0
47 22 0:51 / /mnt/a\\011b\\012c\\134d rw,relatime - tmpfs tmpfs rw
48 22 259:5 / /srv rw,relatime shared:50 - ext4 /dev/sdb1 rw
49 48 0:52 / /srv rw,relatime shared:51 - nfs files:/srv rw,vers=3,addr=10.0.0.5
"""

# Inside a container: overlay root, a host directory bind-mounted at /app, a named volume.
CONTAINER = """\
600 550 0:60 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/K5QF
601 600 0:63 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
610 600 259:2 /home/alice/project /app rw,relatime - ext4 /dev/nvme0n1p2 rw
611 600 259:2 /var/lib/docker/volumes/data/_data /data rw,relatime - ext4 /dev/nvme0n1p2 rw
612 600 0:70 / /app/node_modules rw,relatime - tmpfs tmpfs rw
"""


def test_parse_mountinfo_reads_mount_points_and_types_in_order() -> None:
    assert parse_mountinfo(CONTAINER) == [
        ("/", "overlay"),
        ("/proc", "proc"),
        ("/app", "ext4"),  # the mount point, not the root inside the filesystem (field 4)
        ("/data", "ext4"),
        ("/app/node_modules", "tmpfs"),
    ]


# (mountinfo line, expected (mount point, type)); escapes are undone, optional fields skipped.
PARSE_CASES = [
    ("46 22 0:50 / /mnt/my\\040share rw - cifs //nas/my\\040share rw", ("/mnt/my share", "cifs")),
    ("47 22 0:51 / /mnt/a\\011b\\012c\\134d rw - tmpfs tmpfs rw", ("/mnt/a\tb\nc\\d", "tmpfs")),
    ("47 22 0:51 / /mnt/\\134040 rw - tmpfs tmpfs rw", ("/mnt/\\040", "tmpfs")),  # escaped backslash
    ("22 1 8:1 / / rw - ext4 /dev/sda1 rw", ("/", "ext4")),  # no optional fields
    ("22 1 8:1 / / rw shared:1 master:2 propagate_from:3 - ext4 /dev/sda1 rw", ("/", "ext4")),
    ("44 31 0:48 / /r rw - fuse.sshfs alice@build:/srv rw", ("/r", "fuse.sshfs")),
]


@pytest.mark.parametrize(("line", "expected"), PARSE_CASES)
def test_parse_mountinfo_line(line: str, expected: tuple[str, str]) -> None:
    assert parse_mountinfo(line + "\n") == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "garbage",
        "22 1 8:1 / / rw shared:1",  # no separator
        "22 1 8:1 / / rw -",  # separator but no type
        "- ext4",  # too short
    ],
)
def test_parse_mountinfo_skips_malformed_lines(text: str) -> None:
    assert parse_mountinfo(text + "\n" + "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n") == [("/", "ext4")]


# (path, filesystem type) on HOST: the longest mount point containing the path wins.
TYPE_CASES = [
    ("/", "ext4"),
    ("/etc/passwd", "ext4"),
    ("/tmp", "tmpfs"),  # a path equal to the mount point
    ("/tmp/x/y.py", "tmpfs"),
    ("/tmpfile", "ext4"),  # a sibling sharing the prefix is not inside /tmp
    ("/mnt/nfs", "nfs4"),
    ("/mnt/nfs/", "nfs4"),
    ("/mnt/nfs/project/app.py", "nfs4"),
    ("/mnt/nfsx", "ext4"),  # not inside /mnt/nfs
    ("/mnt/nfsx/app.py", "ext4"),
    ("/mnt/nfs/local", "ext4"),  # nested mount: the longer prefix wins
    ("/mnt/nfs/local/app.py", "ext4"),
    ("/mnt/nfs/localx/app.py", "nfs4"),
    ("/mnt/smb/docs/a.txt", "cifs"),
    ("/mnt/host/Users/alice/src/app.py", "9p"),
    ("/home/alice/src/app.py", "ext4"),
    ("/home/alice/remote", "fuse.sshfs"),
    ("/home/alice/remote/app.py", "fuse.sshfs"),
    ("/home/alice/remotely/app.py", "ext4"),
    ("/mnt/shared/app.py", "virtiofs"),
    ("/mnt/my share/app.py", "cifs"),  # \040 in mountinfo is a space in the path
    ("/mnt/my", "ext4"),
    ("/mnt/my\\040share/app.py", "ext4"),  # the escaped spelling is not the path
    ("/mnt/a\tb\nc\\d/x", "tmpfs"),
    ("/srv/app.py", "nfs"),  # stacked on the same point: the later mount is on top
]


@pytest.mark.parametrize(("path", "expected"), TYPE_CASES)
def test_filesystem_type(path: str, expected: str) -> None:
    assert filesystem_type(path, HOST) == expected


CONTAINER_TYPE_CASES = [
    ("/", "overlay"),
    ("/usr/lib/python3.12/os.py", "overlay"),
    ("/app", "ext4"),
    ("/app/src/app.py", "ext4"),
    ("/application/app.py", "overlay"),
    ("/app/node_modules/x/index.js", "tmpfs"),
    ("/data/db.sqlite", "ext4"),
]


@pytest.mark.parametrize(("path", "expected"), CONTAINER_TYPE_CASES)
def test_filesystem_type_in_a_container(path: str, expected: str) -> None:
    assert filesystem_type(path, CONTAINER) == expected


def test_filesystem_type_without_a_containing_mount_is_none() -> None:
    assert filesystem_type("/srv/x", "30 22 0:27 / /tmp rw - tmpfs tmpfs rw\n") is None
    assert filesystem_type("/srv/x", "") is None


# (path, remote type or None) on HOST: native events miss remote writes only on these.
REMOTE_CASES = [
    ("/", None),
    ("/tmp/x.py", None),
    ("/home/alice/src/app.py", None),
    ("/mnt/nfs", "nfs4"),
    ("/mnt/nfs/project/app.py", "nfs4"),
    ("/mnt/nfsx/app.py", None),
    ("/mnt/nfs/local/app.py", None),  # a local disk mounted inside the NFS tree
    ("/mnt/smb/a.txt", "cifs"),
    ("/mnt/my share/a.txt", "cifs"),
    ("/mnt/host/Users/alice/app.py", "9p"),
    ("/home/alice/remote/app.py", "fuse.sshfs"),
    ("/mnt/shared/app.py", "virtiofs"),
    ("/srv/app.py", "nfs"),
    ("/mnt/a\tb\nc\\d/x", None),
]


@pytest.mark.parametrize(("path", "expected"), REMOTE_CASES)
def test_remote_filesystem(path: str, expected: str | None) -> None:
    fstype = filesystem_type(path, HOST)
    assert (fstype if fstype is not None and is_remote(fstype) else None) == expected


@pytest.mark.parametrize(("path", "_"), CONTAINER_TYPE_CASES)
def test_container_overlay_and_bind_mounts_are_not_remote(path: str, _: str) -> None:
    fstype = filesystem_type(path, CONTAINER)
    assert fstype is not None
    assert not is_remote(fstype)


# A Mac: the (mount point, f_fstypename) pairs psutil.disk_partitions() reports there.
MAC = [
    ("/", "apfs"),
    ("/dev", "devfs"),
    ("/System/Volumes/Data", "apfs"),
    ("/System/Volumes/Data/home", "autofs"),
    ("/Volumes/share", "smbfs"),
    ("/Volumes/afp", "afpfs"),
    ("/Volumes/nas", "nfs"),
    ("/Volumes/dav", "webdav"),
    ("/Users/alice/remote", "macfuse"),
    ("/Users/alice/old-sshfs", "osxfuse"),
    ("/Volumes/USB", "msdos"),
]


@pytest.mark.parametrize(
    ("path", "fstype", "remote"),
    [
        ("/Users/alice/src/app.py", "apfs", False),
        ("/System/Volumes/Data/Users/alice/app.py", "apfs", False),
        ("/Volumes/share/app.py", "smbfs", True),
        ("/Volumes/afp/app.py", "afpfs", True),
        ("/Volumes/nas/app.py", "nfs", True),
        ("/Volumes/dav/app.py", "webdav", True),
        ("/Users/alice/remote/app.py", "macfuse", True),
        ("/Users/alice/old-sshfs/app.py", "osxfuse", True),
        ("/Volumes/USB/app.py", "msdos", False),
        ("/Volumes/sharex/app.py", "apfs", False),  # a prefix of a mount point is not inside it
    ],
)
def test_macos_filesystem_types(path: str, fstype: str, remote: bool) -> None:
    assert innermost(path, MAC) == fstype
    assert is_remote(fstype) is remote


# poll: auto polls only the roots whose filesystem raises no events for changes made elsewhere.
POLL_CASES = [
    # (path, auto, false, true)
    ("/home/alice/src", "native", "native", "poll"),
    ("/tmp/build", "native", "native", "poll"),
    ("/mnt/nfs/app", "poll-remote", "native-unseen", "poll"),
    ("/mnt/nfs/local/app", "native", "native", "poll"),  # a local disk mounted inside the share
    ("/mnt/smb/site", "poll-remote", "native-unseen", "poll"),
    ("/mnt/host/Users/alice/project", "poll-remote", "native-unseen", "poll"),  # WSL2's 9p
    ("/home/alice/remote/app", "poll-remote", "native-unseen", "poll"),  # sshfs
    ("/mnt/shared/app", "poll-remote", "native-unseen", "poll"),  # virtiofs
    ("/srv/app", "poll-remote", "native-unseen", "poll"),  # nfs stacked over ext4: the top one counts
]


@pytest.mark.parametrize(("path", "auto", "off", "on"), POLL_CASES)
def test_poll_auto_polls_only_roots_on_network_filesystems(path: str, auto: str, off: str, on: str) -> None:
    fstype = filesystem_type(path, HOST)
    got = [poll_decision(mode, fstype).value for mode in (Poll.AUTO, Poll.NEVER, Poll.ALWAYS)]
    assert got == [auto, off, on]


@pytest.mark.parametrize(("path", "_"), CONTAINER_TYPE_CASES)
def test_poll_auto_leaves_a_container_s_overlay_and_bind_mounts_native(path: str, _: str) -> None:
    assert poll_decision(Poll.AUTO, filesystem_type(path, CONTAINER)) is PollDecision.NATIVE
