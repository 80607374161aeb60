"""watchd's fork server: a Python app's interpreter with its stable modules imported, forked per start.

watchd runs this file with the app's own interpreter and options (`python [-u ...]
_watchd_forkserver.py`), in the app's cwd and environment, with one end of a Unix stream socket
as WATCHD_FORKSERVER_FD. Standard library only: watchd need not be installed in the app's
interpreter. The conversation, one frame at a time (a 4-byte length, then JSON; descriptors ride
with a frame's first bytes as SCM_RIGHTS):

    watchd -> server  {"files": [...], "argv": [...], "path0": "..."}   what to preload
    server -> watchd  {"ready": {...}} once preloaded, or {"refused": "why"} (then it exits)
    watchd -> server  {"fork": {...}} + descriptors: start an app
    server -> watchd  {"forked": PID} once the app has its process group, descriptors and cwd,
                      or {"error": "why", "errno": N}
    server -> watchd  {"exited": PID, "code": N} when an app it forked exits (code < 0: a signal)
    watchd -> server  {"reap": PID}: its group is gone; collect it
    end of the socket: watchd is gone or done: the server exits

The preload imports the files of the stable modules (their names found from `sys.path`), each
in turn; one that fails is reported and left out (watchd starts a new server without it: a
failed import may leave half-made state behind). The server refuses to serve when a thread runs
after the preload (a fork copies only the thread that forks: locks another one held stay held).

Exits are news, reaping is watchd's call: where the platform can wait without reaping
(`os.waitid` with WNOWAIT: Linux), an app that exits stays a zombie until watchd says its group
is gone, so its PID -- its process group's id -- cannot be reused while watchd may still signal
that group, as for the apps watchd starts itself. Elsewhere (macOS) it is reaped at once, as
watchd does there.

In the fork the app gets what a new interpreter would have: its process group (its own session
without a terminal), stdin, stdout and stderr (the watch's pipe when its output is prefixed) with
`sys.stdout` and `sys.stderr` made for them (see `_stdio`), the listening socket as fd 3, the
descriptors watchd passes at their numbers (none of them ever lands on one the server still uses
in the fork), its cwd, environment (LISTEN_PID = its own PID with a listener), `sys.argv`,
`sys.path[0]`, a fresh `__main__`; the import hook's reports start if watchd asked for them;
what must differ per process is reseeded (see `_reseed`). Then its entry runs: a script (or a
console script's file, as its `#!` interpreter would run it) or `-m module` (runpy, as
`python -m` does). Its own modules are imported afresh, the preloaded ones are already there.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time

_HEADER = struct.Struct("!I")
_MAX_FDS = 16
_MAX_FRAME = 64 * 1024 * 1024
_HERE = os.path.dirname(os.path.abspath(__file__))


class Channel:
    """Frames over the stream socket, with the descriptors that came with them.

    A stream has no message boundaries, and one read may take several frames, so a frame says
    how many descriptors it carries ("_fds") and takes them, in order, from those received.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._fds: list[int] = []

    def send(self, message: dict[str, object], fds: list[int] | None = None) -> None:
        if fds:
            message = {**message, "_fds": len(fds)}
        data = json.dumps(message).encode()
        frame = _HEADER.pack(len(data)) + data
        if fds:
            sent = socket.send_fds(self.sock, [frame], fds)
            frame = frame[sent:]
        if frame:
            self.sock.sendall(frame)

    def buffered(self) -> bool:
        """Whether a whole frame waits in the buffer (select() would not say so)."""
        if len(self._buffer) < _HEADER.size:
            return False
        size: int = _HEADER.unpack_from(self._buffer)[0]
        return len(self._buffer) >= _HEADER.size + size

    def receive(self) -> tuple[dict[str, object], list[int]] | None:
        """The next frame and its descriptors; None at the end of the socket."""
        while True:
            if len(self._buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self._buffer)
                if size > _MAX_FRAME:
                    raise ValueError(f"frame of {size} bytes")
                if len(self._buffer) >= _HEADER.size + size:
                    data = self._buffer[_HEADER.size : _HEADER.size + size]
                    self._buffer = self._buffer[_HEADER.size + size :]
                    message = json.loads(data)
                    if not isinstance(message, dict):
                        raise ValueError("a frame that is not an object")
                    count = message.pop("_fds", 0)
                    if not isinstance(count, int) or count > len(self._fds):
                        raise ValueError("a frame without the descriptors it announced")
                    fds, self._fds = self._fds[:count], self._fds[count:]
                    return message, fds
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 65536, _MAX_FDS)
            self._fds.extend(fds)
            if not data:
                for fd in self._fds:
                    os.close(fd)
                self._fds = []
                return None
            self._buffer += data


# ------------------------------------------------------------------------------ the preload


def _suffixes() -> list[str]:
    import importlib.machinery  # noqa: PLC0415

    return sorted(importlib.machinery.all_suffixes(), key=len, reverse=True)


def module_name(path: str, roots: list[str], suffixes: list[str]) -> str | None:
    """The dotted name `path` is imported by from the first of `roots` it lies below, or None."""
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        if not path.startswith(prefix):
            continue
        rel = path[len(prefix) :]
        for suffix in suffixes:
            if rel.endswith(suffix):
                rel = rel[: -len(suffix)]
                break
        else:
            return None
        parts = rel.split(os.sep)
        if parts[-1] == "__init__":
            parts.pop()
        if not parts or not all(p.isidentifier() for p in parts) or parts[-1] == "__main__":
            return None
        return ".".join(parts)
    return None


def _native_threads() -> int | None:
    """The process's threads as the kernel counts them, where the standard library can ask (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def _threads() -> int:
    """Threads besides this one: Python's own (threading and _thread), and native ones on Linux."""
    import _thread  # noqa: PLC0415

    python = _thread._count()
    native = _native_threads()
    return max(python, native - 1 if native is not None else 0)


def preload(files: list[str]) -> dict[str, object]:
    """Import the modules of `files` in order; what came of it, for watchd."""
    import importlib  # noqa: PLC0415

    roots = [os.path.abspath(p or os.getcwd()) for p in sys.path]
    suffixes = _suffixes()
    failed: dict[str, str] = {}
    pulled: dict[str, str] = {}  # module name -> the preloaded file whose import brought it in
    started_ns = time.time_ns()
    for path in files:
        name = module_name(path, roots, suffixes)
        if name is None or name in sys.modules:
            continue
        known = set(sys.modules)
        try:
            importlib.import_module(name)
        except BaseException as exc:
            text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
            failed[path] = text[:300]
        for new in set(sys.modules) - known:
            pulled[new] = path
        if _threads():
            return {"refused": f"importing {name} ({path}) started a thread"}
    modules: list[list[str | None]] = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and os.path.isabs(file):
            modules.append([name, file, pulled.get(name)])
    return {
        "ready": {
            "pid": os.getpid(),
            "modules": len(sys.modules),
            "files": modules,
            "failed": failed,
            "started_ns": started_ns,
            "holds_zombies": _HOLDS,
        }
    }


# ------------------------------------------------------------------------------ serving

_HOLDS = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")


class Server:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.live: set[int] = set()  # forked, not yet reported as exited
        self.held: set[int] = set()  # exited, reported, a zombie until watchd says "reap"
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, _noop)

    def serve(self) -> dict[str, object] | None:
        """Serve until the socket ends (None), or, in a fork, return the app's request."""
        sock = self.channel.sock
        while True:
            if self.channel.buffered():
                readable = [sock.fileno()]
            else:
                try:
                    readable, _, _ = select.select([sock.fileno(), self.wake_r], [], [])
                except InterruptedError:
                    continue
            if self.wake_r in readable:
                try:
                    while os.read(self.wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                self._collect()
            if sock.fileno() in readable:
                got = self.channel.receive()
                if got is None:
                    return None
                message, fds = got
                if "fork" in message:
                    request = message["fork"]
                    assert isinstance(request, dict)
                    app = self._fork(request, fds)
                    if app is not None:
                        return app
                elif "reap" in message:
                    pid = message["reap"]
                    assert isinstance(pid, int)
                    self._reap(pid)
                for fd in fds:
                    os.close(fd)
            self._collect()

    def _collect(self) -> None:
        for pid in list(self.live):
            code = self._exit_code(pid)
            if code is not None:
                self.live.discard(pid)
                self.channel.send({"exited": pid, "code": code})

    def _exit_code(self, pid: int) -> int | None:
        if _HOLDS:
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return 255
            if info is None or info.si_pid == 0:
                return None
            self.held.add(pid)
            return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 255
        return os.waitstatus_to_exitcode(status) if done else None

    def _reap(self, pid: int) -> None:
        if pid in self.held:
            self.held.discard(pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)

    def _fork(self, request: dict[str, object], fds: list[int]) -> dict[str, object] | None:
        ready_r, ready_w = os.pipe()
        terminal = bool(request.get("terminal"))
        pid = os.fork()
        if pid == 0:
            try:
                os.close(ready_r)
                # Above every number an app's descriptor goes to: placed on the answer's pipe, one
                # would close it, the answer would go into the app's descriptor, and the server
                # would never hear that the app started.
                ready_w = _moved_above(ready_w, _targets(request, fds))
                self._become_app(request, fds)
            except BaseException as exc:
                errno = getattr(exc, "errno", None) or 0
                text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                try:
                    os.write(ready_w, json.dumps({"error": text, "errno": errno}).encode())
                finally:
                    os._exit(127)
            os.write(ready_w, b"{}")
            os.close(ready_w)
            return request
        os.close(ready_w)
        if terminal:
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)
        answer = b""
        while True:
            try:
                chunk = os.read(ready_r, 4096)
            except InterruptedError:
                continue
            if not chunk:
                break
            answer += chunk
        os.close(ready_r)
        try:
            said = json.loads(answer) if answer else {"error": "the new process ended at once", "errno": 0}
        except ValueError:
            said = {"error": "the new process answered nonsense", "errno": 0}
        if "error" in said:
            # A start that failed ends here; one that said nothing may still run: it must not
            # keep the server waiting for it (the server answers every fork).
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)  # its own child, not yet reaped: the PID is no other's
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.channel.send(said)
        else:
            self.live.add(pid)
            self.channel.send({"forked": pid})
        return None

    def _become_app(self, request: dict[str, object], fds: list[int]) -> None:
        """In the fork, before it says it started: its group, descriptors and cwd."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.channel.sock.close()
        if request.get("terminal"):
            os.setpgid(0, 0)
        else:
            os.setsid()
        targets = _targets(request, fds)
        moved = [_moved_above(fd, targets) for fd in fds]  # out of the way of every target first
        if 0 not in targets:
            null = os.open(os.devnull, os.O_RDONLY)
            if null != 0:
                os.dup2(null, 0)
                os.close(null)
        for fd, target in zip(moved, targets, strict=True):
            os.dup2(fd, target)  # inheritable, as the descriptors an exec'd app is given
            os.close(fd)
        cwd = request.get("cwd")
        assert isinstance(cwd, str)
        os.chdir(cwd)


def _noop(_sig: int, _frame: object) -> None:
    pass


def _targets(request: dict[str, object], fds: list[int]) -> list[int]:
    """The numbers the app's descriptors go to, one for each of `fds`."""
    targets = request.get("fds", [])
    assert isinstance(targets, list) and len(targets) == len(fds)
    assert all(isinstance(t, int) and t >= 0 for t in targets)
    return targets


def _moved_above(fd: int, targets: list[int]) -> int:
    """`fd` at a number above the standard streams and every target (it is closed where it was)."""
    import fcntl  # noqa: PLC0415

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, max([2, *targets]) + 1)
    os.close(fd)
    return moved


# ------------------------------------------------------------------------------ the app


def _reseed() -> None:
    """What a fork would share with its siblings and a new interpreter would not.

    `random` reseeds itself in a fork (os.register_at_fork); `tempfile`'s names and `uuid`
    (uuid4 reads os.urandom; uuid1 draws its clock sequence from `random`) need nothing. Here:
    multiprocessing's authentication key, and numpy's global generator when it was preloaded.
    `hash()` of str and bytes keeps the server's seed: it is fixed when an interpreter starts.
    """
    process = sys.modules.get("multiprocessing.process")
    if process is not None:
        with contextlib.suppress(Exception):
            process.current_process().authkey = os.urandom(32)
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        with contextlib.suppress(Exception):
            numpy_random.seed()


def _stdio() -> None:
    """sys.stdout and sys.stderr as a new interpreter would make them for the app's descriptors and
    environment. The server's were made for its own: watchd's stdout and environment, while a
    prefixed app writes into a pipe with PYTHONUNBUFFERED=1 (a partial line, a prompt, must show
    at once). Streams a preloaded module replaced are its business and stay."""
    import io  # noqa: PLC0415

    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        if not isinstance(old, io.TextIOWrapper) or old is not getattr(sys, f"__{name}__"):
            continue
        with contextlib.suppress(Exception):
            old.flush()
        # -u made the server's unbuffered (write-through) already; the app's environment may too
        unbuffered = old.write_through or bool(os.environ.get("PYTHONUNBUFFERED"))
        new = io.TextIOWrapper(
            open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False),  # noqa: SIM115
            encoding=old.encoding,
            errors=old.errors,
            newline="\n",
            line_buffering=not unbuffered and (fd == 2 or os.isatty(fd)),
            write_through=unbuffered,
        )
        setattr(sys, name, new)
        setattr(sys, f"__{name}__", new)


_interrupted: list[bool] = []  # [True] once a Ctrl-C ended the app


def _exit_by_sigint() -> None:
    """Registered first, so run last at exit: an app ended by Ctrl-C dies of SIGINT, as Python does."""
    if _interrupted:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def _trimmed(tb: object) -> object:
    """The traceback without this file's frames (a new interpreter has none of them)."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # type: ignore[attr-defined]
        tb = tb.tb_next  # type: ignore[attr-defined]
    return tb


def run_app(request: dict[str, object]) -> None:
    """In the fork: become the app and run its entry, ending as a new interpreter would."""
    import atexit  # noqa: PLC0415
    import types  # noqa: PLC0415

    atexit.register(_exit_by_sigint)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    if request.get("listen"):
        os.environ["LISTEN_PID"] = str(os.getpid())
    argv = request["argv"]
    assert isinstance(argv, list)
    sys.argv[:] = argv
    orig = request.get("orig_argv")
    if isinstance(orig, list):
        sys.orig_argv[:] = orig
    path0 = request["path0"]
    assert isinstance(path0, str)
    if sys.path:
        sys.path[0] = path0
    _stdio()
    _reseed()
    if "WATCHD_IMPORTS_FD" in os.environ:
        try:
            if "_watchd_imports" not in sys.modules:
                sys.path.insert(1, _HERE)
                try:
                    import _watchd_imports  # type: ignore[import-not-found]  # noqa: F401, PLC0415
                finally:
                    sys.path.remove(_HERE)
            sys.modules["_watchd_imports"].start()
        except Exception:  # noqa: S110 (the app must start whatever happens here)
            pass
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    kind, target = request["kind"], request["target"]
    assert isinstance(target, str)
    try:
        if kind == "module":
            import runpy  # noqa: PLC0415

            runpy._run_module_as_main(target, alter_argv=True)  # type: ignore[attr-defined]
        else:
            import importlib.machinery  # noqa: PLC0415

            path = os.path.abspath(target)
            main.__file__ = path
            main.__cached__ = None  # type: ignore[attr-defined]
            main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
            main.__package__ = None
            main.__spec__ = None
            with open(path, "rb") as f:
                source = f.read()
            code = compile(source, path, "exec", dont_inherit=True)
            exec(code, main.__dict__)  # noqa: S102 (the app's own script, as python runs it)
    except SystemExit:
        raise
    except KeyboardInterrupt as exc:
        _interrupted.append(True)
        sys.excepthook(type(exc), exc, _trimmed(exc.__traceback__))  # type: ignore[arg-type]
    except BaseException as exc:
        tb = _trimmed(exc.__traceback__)
        exc.__traceback__ = tb  # type: ignore[assignment]
        sys.excepthook(type(exc), exc, tb)  # type: ignore[arg-type]
        raise SystemExit(1) from None


# ------------------------------------------------------------------------------ main


def main() -> dict[str, object] | None:
    """The server: None when it is done; in a fork, the app's request."""
    number = os.environ.pop("WATCHD_FORKSERVER_FD", "")
    if not number.isdigit():
        sys.exit("watchd's fork server: started by watchd only (no WATCHD_FORKSERVER_FD)")
    sock = socket.socket(fileno=int(number))
    sock.set_inheritable(False)
    channel = Channel(sock)
    got = channel.receive()
    if got is None:
        return None
    config, _ = got
    files, argv, path0 = config.get("files"), config.get("argv"), config.get("path0")
    if not isinstance(files, list) or not isinstance(argv, list) or not isinstance(path0, str):
        channel.send({"refused": "watchd sent a preload it does not understand"})
        return None
    sys.argv[:] = argv  # as the app sees them at import
    sys.path[0] = path0
    result = preload([f for f in files if isinstance(f, str)])
    for stream in (sys.stdout, sys.stderr):  # nothing buffered may reach every fork
        with contextlib.suppress(Exception):
            stream.flush()
    # What the preload made stays where it is: no collection in an app moves or frees it, so the
    # forks keep sharing its pages (copy-on-write) and exit in half the time.
    import gc  # noqa: PLC0415

    try:  # watchd may have stopped meanwhile: then there is nobody to tell, and nothing to say
        if "refused" in result:
            channel.send(result)
            return None
        gc.freeze()
        channel.send(result)
    except (BrokenPipeError, ConnectionResetError):
        return None
    return Server(channel).serve()


if __name__ == "__main__":
    _app = main()
    if _app is not None:
        run_app(_app)
