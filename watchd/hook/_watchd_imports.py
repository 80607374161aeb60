"""watchd's import reports: the part of the import hook that tells watchd which files the app imported.

`start()` reads WATCHD_IMPORTS_FD ("FD:INODE": the pipe's descriptor, and its inode that proves
it is still watchd's) and, if it names watchd's pipe, reports the files of the modules in
`sys.modules` from a daemon thread, four times a second: absolute paths, each ending in a NUL,
in writes of at most PIPE_BUF bytes (atomic, so forked workers reporting on the same pipe never
interleave). Nothing runs inside an import: the import system is not touched.

An uncaught exception (a syntax error in a module, an import that fails at start) reports the
files of its traceback too before the app ends, so fixing the file restarts the app even when it
is outside the watched globs.

The first record is HELLO; a child that never sends it did not load the hook (not Python,
`python -S`, `-I`, `-E`). `sitecustomize` (beside this file) calls `start()` when the interpreter
starts; watchd's fork server (also beside it) calls it in each app it forks, after it has set the
app's environment. Standard library only; must never raise.
"""

import atexit
import os
import sys

HELLO = b"watchd-imports 1\0"  # the first record; every other one is an absolute path


def start() -> None:
    """Report to the pipe WATCHD_IMPORTS_FD names, if any (popped: exec'd grandchildren do not get it)."""
    raw = os.environ.pop("WATCHD_IMPORTS_FD", "")  # exec'd grandchildren do not get the fd
    number, _, inode = raw.partition(":")
    if not number.isdigit() or not inode.isdigit():
        return
    fd = int(number)
    try:
        if os.fstat(fd).st_ino != int(inode):
            return  # not watchd's pipe (a process in between closed it and the number was reused)
        os.set_inheritable(fd, False)
        os.set_blocking(fd, False)  # a watchd that stopped reading never blocks the app
    except OSError:
        return
    import _thread  # noqa: PLC0415 (built in: threading would cost the app a few ms at start)
    import time  # noqa: PLC0415

    pipe_buf = 4096
    seen: set[str] = set()
    lock = _thread.allocate_lock()
    state = {"fd": fd, "count": -1}

    def send(records: list[bytes]) -> None:
        chunk = b""
        for rec in records:
            if len(rec) > pipe_buf:
                continue
            if len(chunk) + len(rec) > pipe_buf:
                _write(chunk)
                chunk = b""
            chunk += rec
        if chunk:
            _write(chunk)

    def _write(data: bytes) -> None:
        if state["fd"] < 0:
            return
        try:
            os.write(state["fd"], data)
        except BlockingIOError:  # the pipe is full: watchd is not reading now; these are lost
            pass
        except OSError:  # watchd is gone: stop reporting
            state["fd"] = -1

    def source_of(module: object) -> str | None:
        name = getattr(module, "__file__", None)
        if not isinstance(name, str):
            return None
        if name.endswith((".pyc", ".pyo")):
            head, tail = os.path.split(name)
            if os.path.basename(head) == "__pycache__":
                name = os.path.join(os.path.dirname(head), tail.partition(".")[0] + ".py")
            else:
                name = name[:-1]
        return os.path.abspath(name)  # (watchd drops what is not a file: a module in a zip file)

    def report(paths: list[str]) -> None:
        records = []
        with lock:
            for path in paths:
                if path not in seen:
                    seen.add(path)
                    records.append(os.fsencode(path) + b"\0")
        if records:
            send(records)

    def scan() -> None:
        modules = list(sys.modules.values())
        if len(modules) == state["count"]:
            return
        state["count"] = len(modules)
        report([p for p in map(source_of, modules) if p is not None])

    def loop() -> None:
        while state["fd"] >= 0:
            try:  # noqa: SIM105 (contextlib is one more import in every app)
                scan()
            except Exception:  # noqa: S110 (a module with an odd __file__ must not end the reports)
                pass
            time.sleep(0.25)

    def traceback_files(tb: object, exc: BaseException) -> list[str]:
        files = []
        while tb is not None:
            files.append(tb.tb_frame.f_code.co_filename)  # type: ignore[attr-defined]
            tb = tb.tb_next  # type: ignore[attr-defined]
        filename = getattr(exc, "filename", None)
        if isinstance(exc, SyntaxError) and isinstance(filename, str):
            files.append(filename)
        return [os.path.abspath(f) for f in files if os.path.isfile(f)]

    previous_hook = sys.excepthook

    def excepthook(kind: type[BaseException], exc: BaseException, tb: object) -> None:
        try:
            scan()
            report(traceback_files(tb, exc))
        except Exception:  # noqa: S110 (reporting must never hide the app's own error)
            pass
        previous_hook(kind, exc, tb)  # type: ignore[arg-type]

    def start_thread() -> None:
        _thread.start_new_thread(loop, ())

    def after_fork() -> None:  # a forked worker (gunicorn, multiprocessing) reports its own imports
        state["count"] = -1
        start_thread()

    sys.excepthook = excepthook
    atexit.register(scan)  # what an app that ends quickly imported after the last look
    os.register_at_fork(after_in_child=after_fork)
    _write(HELLO)
    start_thread()  # its first look reports what the interpreter imported to get here
