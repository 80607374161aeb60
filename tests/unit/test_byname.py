"""What `process: NAME` names: the matching rule of watchd.actions.byname, as a table."""

from __future__ import annotations

import pytest

from watchd.actions.byname import matches

GUNICORN = ["/venv/bin/python3", "/venv/bin/gunicorn", "-c", "api.py", "app:app"]


@pytest.mark.parametrize(
    ("name", "comm", "argv", "expected"),
    [
        # one word: the kernel's name, the program's file name, a Python interpreter's script or module
        ("gunicorn", "gunicorn", GUNICORN, True),
        ("gunicorn", "python3", GUNICORN, True),
        ("nginx", "nginx", ["nginx: master process /usr/sbin/nginx -g daemon off;"], True),
        ("prometheus", "prometheus", ["/bin/prometheus", "--config.file=/etc/prometheus.yml"], True),
        ("prometheus", "sh", ["/bin/sh", "-c", "prometheus --config.file=x"], False),  # a shell runs it
        ("http.server", "python3", ["python3", "-m", "http.server", "8000"], True),
        ("app.py", "python3", ["python3", "app.py"], True),
        ("python3", "python3", ["python3", "app.py"], True),  # the interpreter is its program too
        ("gunicorn", "vim", ["vim", "gunicorn.conf.py"], False),
        ("gunicorn", "tail", ["tail", "-f", "gunicorn"], False),  # an argument is not the program
        ("uvicorn", "python3", ["python3", "-c", "import uvicorn"], False),
        ("gunicorn", "gunicorn-helper", ["gunicorn-helper"], False),
        # Linux keeps 15 characters of the kernel's name
        ("a-long-program-name", "a-long-program-", ["./run"], True),
        ("a-long-progXXXXXXX", "a-long-program-", ["./run"], False),
        ("short", "shor", ["./run"], False),
        # more words: the command line from the program on
        ("gunicorn -c api.py", "gunicorn", GUNICORN, True),
        ("gunicorn -c web.py", "gunicorn", GUNICORN, False),
        ("gunicorn api.py", "gunicorn", GUNICORN, False),  # consecutive words only
        ("gunicorn -c", "gunicorn", ["gunicorn"], False),
        ("/venv/bin/gunicorn -c", "gunicorn", GUNICORN, True),  # a path is compared as written
        ("/usr/bin/gunicorn", "gunicorn", GUNICORN, False),
        ("sh -c", "sh", ["/bin/sh", "-c", "gunicorn app:app"], True),
        ("gunicorn app:app", "sh", ["/bin/sh", "-c", "gunicorn app:app"], False),
        ("gunicorn", "gunicorn", [], True),  # a zombie's empty command line: its kernel name
        ("gunicorn", "x", [], False),
    ],
)
def test_what_a_name_names(name: str, comm: str, argv: list[str], expected: bool) -> None:
    assert matches(name, comm, argv) is expected


def test_pid_1_is_refused_as_from_a_pidfile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PID namespace's init named as the app (no shareProcessNamespace): never signalled."""
    import threading  # noqa: PLC0415

    from watchd.actions import Context, byname  # noqa: PLC0415
    from watchd.actions.pidfile import ProcessAction  # noqa: PLC0415
    from watchd.changes import Batch  # noqa: PLC0415
    from watchd.model import ProcessSettings  # noqa: PLC0415
    from watchd.outcome import Outcome, Result  # noqa: PLC0415

    monkeypatch.setattr(byname, "find", lambda name, uid: [byname.Found(1, 0, 0.0, "gunicorn", "gunicorn")])
    sent: list[tuple[int, int]] = []
    action = ProcessAction(
        ProcessSettings("gunicorn"), Context("api", kill=lambda pid, sig: sent.append((pid, sig)))
    )
    outcome = action.execute(Batch("api", (), 0.0, 0.0), threading.Event())
    assert isinstance(outcome, Outcome) and outcome.result is Result.REFUSED
    assert "is PID 1 (init of this PID namespace): refused" in outcome
    assert sent == []
