"""`listen:` addresses: what is accepted, and the one-line error for what is not."""

from __future__ import annotations

import pytest

from watchd.model import ListenAddress
from watchd.values import parse_listen


@pytest.mark.parametrize(
    ("text", "host", "port", "path"),
    [
        ("127.0.0.1:8000", "127.0.0.1", 8000, ""),
        ("0.0.0.0:80", "0.0.0.0", 80, ""),  # noqa: S104 (parsing, not binding)
        ("localhost:8000", "localhost", 8000, ""),
        ("[::1]:8000", "::1", 8000, ""),
        ("[::]:8000", "::", 8000, ""),
        (":8000", "127.0.0.1", 8000, ""),  # no host: loopback, not every interface
        ("8000", "127.0.0.1", 8000, ""),
        ("127.0.0.1:0", "127.0.0.1", 0, ""),  # any free port
        (" 127.0.0.1:8000 ", "127.0.0.1", 8000, ""),
        ("unix:/run/user/1000/app.sock", "", 0, "/run/user/1000/app.sock"),
        ("unix:/tmp/../tmp/a.sock", "", 0, "/tmp/a.sock"),
    ],
)
def test_accepted(text: str, host: str, port: int, path: str) -> None:
    address = parse_listen(text)
    assert (address.host, address.port, address.path) == (host, port, path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot read address '' (write HOST:PORT like 127.0.0.1:8000, [::1]:8000, or unix:/path)"),
        (
            "127.0.0.1",
            "cannot read address '127.0.0.1' (write HOST:PORT like 127.0.0.1:8000, "
            "[::1]:8000, or unix:/path)",
        ),
        (
            "http://127.0.0.1:8000",
            "cannot read address 'http://127.0.0.1:8000' (write HOST:PORT like 127.0.0.1:8000, [::1]:8000, "
            "or unix:/path)",
        ),
        (
            "::1:8000",
            "cannot read address '::1:8000' (write HOST:PORT like 127.0.0.1:8000, [::1]:8000, or unix:/path)",
        ),
        ("127.0.0.1:70000", "port 70000 is out of range (use 1 to 65535, or 0 for any free port)"),
        ("[127.0.0.1]:80", "[127.0.0.1] is not an IPv6 address (write IPv4 addresses without brackets)"),
        ("unix:", "unix: needs a socket path (write unix:/run/user/1000/app.sock)"),
        ("unix:app.sock", "unix socket path 'app.sock' is relative (write an absolute path)"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as err:
        parse_listen(text)
    assert str(err.value) == message


def test_describe_and_equality() -> None:
    assert parse_listen("[::1]:8000").describe() == "[::1]:8000"
    assert parse_listen("8000").describe() == "127.0.0.1:8000"
    assert parse_listen("unix:/tmp/a.sock").describe() == "unix:/tmp/a.sock"
    # where it was written does not make it another address (a reload that moves a line keeps the app)
    a = ListenAddress(text="8000", host="127.0.0.1", port=8000, where="a.yaml:3:5")
    assert a == ListenAddress(text="8000", host="127.0.0.1", port=8000, where="b.yaml:9:13")
