"""The pidfile trust rules that need no process: owner checks, cgroup membership, PID text."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchd.errors import ActionError
from watchd.trust import PidfileRead, check_owner, in_unit, parse_pid

CGROUP_V2 = "0::/system.slice/gunicorn.service\n"
CGROUP_V1 = (
    "12:pids:/system.slice/gunicorn.service\n"
    "11:memory:/system.slice/gunicorn.service\n"
    "1:name=systemd:/system.slice/gunicorn.service\n"
)
USER_UNIT = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/web.service\n"
TEMPLATE = "0::/system.slice/system-app.slice/app@blue.service\n"
SCOPE = "0::/user.slice/user-1000.slice/session-3.scope\n"


@pytest.mark.parametrize(
    ("cgroup", "unit", "inside"),
    [
        (CGROUP_V2, "gunicorn.service", True),
        (CGROUP_V2, "uwsgi.service", False),
        (CGROUP_V2, "gunicorn", False),  # a unit's full name, not a prefix of it
        (CGROUP_V1, "gunicorn.service", True),
        (USER_UNIT, "web.service", True),
        (USER_UNIT, "user@1000.service", True),  # the user manager's unit holds its units' processes
        (TEMPLATE, "app@blue.service", True),
        (TEMPLATE, "app@green.service", False),
        (SCOPE, "session-3.scope", True),
        ("0::/\n", "gunicorn.service", False),
        ("", "gunicorn.service", False),
    ],
)
def test_in_unit(cgroup: str, unit: str, inside: bool) -> None:
    assert in_unit(cgroup, unit) is inside


def read(owner: int | None) -> PidfileRead:
    return PidfileRead(4242, 0.0, owner, "pidfile owned by uid 1001" if owner is not None else "")


@pytest.mark.parametrize(
    ("owner", "uids", "message"),
    [
        (None, (0, 0), None),  # root's or watchd's own pidfile: any target
        (1001, (1001, 1001), None),
        (1001, (0, 0), "PID 4242 runs as uid 0, but the pidfile owned by uid 1001 may only name that user's"),
        (1001, (1001, 0), "PID 4242 runs as uid 0, but"),  # setuid root: its effective UID counts
        (1001, (0, 1001), "PID 4242 runs as uid 1001, but"),  # and its real one
        (1001, None, "PID 4242: cannot read its owner: refused"),  # fail closed
    ],
)
def test_check_owner(owner: int | None, uids: tuple[int, int] | None, message: str | None) -> None:
    if message is None:
        check_owner(read(owner), 4242, uids)
        return
    with pytest.raises(ActionError) as err:
        check_owner(read(owner), 4242, uids)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize(
    ("data", "pid"),
    [(b"42\n", 42), (b"  42  ", 42), (b"+42", 42), (b"", None), (b"\n\n", None)],
)
def test_parse_pid(data: bytes, pid: int | None) -> None:
    assert parse_pid(Path("/run/app.pid"), data) == pid
