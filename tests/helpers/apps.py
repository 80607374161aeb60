"""Small apps for run-mode tests, written into a test's directory, and how to save them as editors do."""

from __future__ import annotations

import os
from pathlib import Path

# A plain http.server app. Port from $PORT, or the socket watchd passes as fd 3 (LISTEN_PID is
# this process). TERM is a graceful stop: the request in hand is answered, then it exits.
PLAIN_APP = """\
import http.server, os, signal, socket, sys, threading

VERSION = "{version}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if os.environ.get("LISTEN_PID") == str(os.getpid()):
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=3)
else:
    server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print("serving", VERSION, "pid", os.getpid(), flush=True)
server.serve_forever(poll_interval=0.05)
server.server_close()
"""


def save(path: Path, text: str) -> None:
    """Save as editors do: write a temporary file next to it, then rename it over the old one."""
    tmp = path.with_name(f".{path.name}.watchd-test-new")
    tmp.write_text(text)
    os.replace(tmp, path)


def plain_app(directory: Path, version: str, *, broken: bool = False) -> Path:
    """Write the plain app (with a syntax error if `broken`); return its path."""
    text = PLAIN_APP.format(version=version)
    if broken:
        text += "\ndef broken(:\n"
    path = directory / "app.py"
    save(path, text)
    return path


FLASK_APP = """\
from flask import Flask

app = Flask(__name__)
VERSION = "{version}"


@app.get("/")
def index():
    return VERSION
"""

ASGI_APP = """\
VERSION = "{version}"


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = VERSION.encode()
    headers = [(b"content-length", b"%d" % len(body))]
    await send({{"type": "http.response.start", "status": 200, "headers": headers}})
    await send({{"type": "http.response.body", "body": body}})
"""

TORNADO_APP = """\
import asyncio, os, socket

import tornado.httpserver
import tornado.web

VERSION = "{version}"


class Index(tornado.web.RequestHandler):
    def get(self):
        self.write(VERSION)


async def main():
    app = tornado.web.Application([(r"/", Index)])
    if os.environ.get("LISTEN_PID") == str(os.getpid()):  # watchd --listen: the socket is fd 3
        sock = socket.socket(fileno=3)
        sock.setblocking(False)
        tornado.httpserver.HTTPServer(app).add_sockets([sock])
    else:
        app.listen(int(os.environ["PORT"]), address="127.0.0.1")
    await asyncio.Event().wait()


asyncio.run(main())
"""

DJANGO_URLS = """\
from django.http import HttpResponse
from django.urls import path

VERSION = "{version}"


def index(request):
    return HttpResponse(VERSION)


urlpatterns = [path("", index)]
"""

WERKZEUG_APP = """\
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response

VERSION = "{version}"


def app(environ, start_response):
    return Response(VERSION)(environ, start_response)


if __name__ == "__main__":
    run_simple("127.0.0.1", 0, app, use_reloader=False)  # the socket from WERKZEUG_SERVER_FD wins
"""
