"""The worker that ``serve`` runs beside the web server: a child ``python app.py worker``.

A separate process (not threads in the web process) because training holds the GIL and a
lot of memory, and because Huey task timeouts need the process worker type. The child gets
the same data dir, database URL and queue URL as the parent; it stops when the parent stops
(:meth:`WorkerProcess.stop`, registered with :mod:`atexit`) and, on Linux, also when the parent
dies without cleaning up (the kernel sends it SIGTERM). ``serve`` starts it again when it dies
(:mod:`worker.supervisor`). It runs in its own session and process
group, so a Ctrl-C in the terminal reaches only the parent, which then stops the worker in
order; the consumer's own worker processes (and, taking both queues, its two consumer
children) share that group (:meth:`WorkerProcess.kill_group`).
"""
from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from db.settings import Settings

APP = Path(__file__).resolve().parent.parent / "app.py"


def _parent_death_signal() -> Callable[[], None] | None:
    """For ``preexec_fn``: ask Linux to SIGTERM the child when the thread that started it ends
    (``PR_SET_PDEATHSIG``); ``None`` elsewhere. libc is opened here, in the parent, so that
    between fork and exec the child only calls one libc function (no ``dlopen`` there, which
    is not safe after a fork of a process with other threads)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class WorkerProcess:
    """A running ``app.py worker`` child. Use :meth:`stop` (or ``with``) to end it."""

    def __init__(self, popen: subprocess.Popen, log_path: Path | None) -> None:
        self.popen = popen
        self.log_path = log_path
        """File receiving the child's stdout and stderr (``None``: inherited)."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Ask the consumer to stop (SIGINT: finish the running task), then SIGTERM, then SIGKILL.

        Waits at most ``timeout_s`` seconds in total for the graceful steps; returns the exit
        code. A training run cut short here is marked failed by the worker itself
        (KeyboardInterrupt) or, after a SIGKILL, at the next consumer start.
        """
        if self.popen.poll() is not None:
            return self.popen.returncode
        steps = ((signal.SIGINT, timeout_s * 0.6), (signal.SIGTERM, timeout_s * 0.4))
        for sig, wait_s in steps:
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                break
            try:
                return self.popen.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
        self.popen.kill()
        return self.popen.wait()

    def kill_group(self) -> None:
        """SIGKILL the consumer and its worker processes at once (what a crash looks like)."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_command(settings: Settings, workers: int | None = None,
                   queues: str | None = None) -> list[str]:
    """The command line of the child: this interpreter running ``app.py worker``
    (``queues``: ``--queues``, e.g. ``"light"``; default every queue)."""
    cmd = [sys.executable, str(APP), "worker", "--data-dir", str(settings.data_dir)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    if queues is not None:
        cmd += ["--queues", queues]
    return cmd


def start_worker_process(settings: Settings, workers: int | None = None,
                         log_path: str | os.PathLike | None = None,
                         env: dict[str, str] | None = None,
                         queues: str | None = None, stop_at_exit: bool = True) -> WorkerProcess:
    """Start ``python app.py worker`` for ``settings`` and return its handle.

    ``log_path``: file for the child's output (default: ``<data dir>/worker.log``; the parent's
    terminal stays readable). ``env``: extra environment variables (e.g. ``FACET_*`` options).
``queues``: the queues it takes (``worker --queues``; default all).
    The database and queue URLs are passed explicitly, so a URL given as a flag to the parent
    reaches the child too. ``stop_at_exit``: stop the child when this interpreter exits (off
    when a :class:`worker.supervisor.WorkerSupervisor` owns it and stops it itself). Call it
    from a thread that lives as long as the child should (the main thread, or the
    supervisor's): Linux sends the parent-death signal when the *thread* that started the
    child ends.
    """
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["FACET_DATA_DIR"] = str(settings.data_dir)
    child_env["FACET_DATABASE_URL"] = settings.database_url
    child_env["FACET_QUEUE_URL"] = settings.queue_url
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    log = Path(log_path) if log_path is not None else settings.data_dir / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(worker_command(settings, workers, queues), env=child_env,
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, preexec_fn=_parent_death_signal(),
                                 cwd=str(APP.parent))
    proc = WorkerProcess(popen, log)
    if stop_at_exit:
        atexit.register(proc.stop)
    return proc
