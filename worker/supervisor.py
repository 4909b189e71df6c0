"""Keeping ``serve``'s worker child running: a dead one is started again.

A worker can die under a running studio: the kernel's out-of-memory killer during a large
training run, a crash in a native library, someone's ``kill``. Before, the studio went on
taking labels and queueing jobs that nothing ran. :class:`WorkerSupervisor` polls the child
and starts a new one when it has exited; the new consumer fails the job the dead one left
running and takes the queue from there (:mod:`worker.recovery`). A child that keeps dying
(a bad setting, a broken install) is restarted after 1, 2, 4, … s, at most
:data:`MAX_DELAY_S` apart, each exit reported on stderr with the log to read.
"""
from __future__ import annotations

import atexit
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from worker.child_process import WorkerProcess

POLL_S = 2.0
"""Seconds between two looks at the child."""
MAX_DELAY_S = 60.0
"""Longest wait before a restart (the delay doubles from 1 s while the child keeps dying)."""
STEADY_S = 120.0
"""A child that ran this long before dying is restarted after 1 s again, not the doubled delay."""


class WorkerSupervisor:
    """Runs ``start()`` (which starts a worker child and returns its handle) and, from a
    daemon thread, again whenever that child has exited, until :meth:`stop` (also run at
    interpreter exit). ``report`` receives the one-line notices (default: stderr)."""

    def __init__(self, start: Callable[[], WorkerProcess], poll_s: float = POLL_S,
                 report: TextIO | None = None) -> None:
        self._start = start
        self.poll_s = poll_s
        self._report = report
        self._lock = threading.Lock()
        self._stopping = False
        self.restarts = 0
        """How many times a dead child was replaced."""
        self._proc = start()
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="facet-worker-supervisor",
                                        daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    @property
    def current(self) -> WorkerProcess:
        """The child running now (or the one that just died)."""
        return self._proc

    def _say(self, line: str) -> None:
        print(f"worker: {line}", file=self._report or sys.stderr, flush=True)

    def _watch(self) -> None:
        delay = 1.0
        # The child was started from this thread (after a restart): Linux sends it SIGTERM when
        # the thread ends, so the thread ends only after stop() has stopped it (the lock).
        while True:
            time.sleep(self.poll_s)
            with self._lock:
                if self._stopping:
                    return
                if self._proc.alive():
                    continue
                ran = time.monotonic() - self._started_at
                delay = 1.0 if ran >= STEADY_S else delay
                self._say(f"the worker (pid {self._proc.pid}) exited with code "
                          f"{self._proc.popen.returncode} after {ran:.0f} s; starting a new one "
                          f"in {delay:.0f} s (its log: {self._proc.log_path})")
            time.sleep(delay)
            with self._lock:
                if self._stopping:
                    return
                self._proc = self._start()
                self._started_at = time.monotonic()
                self.restarts += 1
                self._say(f"started again (pid {self._proc.pid}, restart {self.restarts})")
            delay = min(2 * delay, MAX_DELAY_S)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """Stop supervising and stop the child (gracefully, as :meth:`WorkerProcess.stop`);
        its exit code. Safe to call twice."""
        with self._lock:
            self._stopping = True
            return self._proc.stop(timeout_s)

    def __enter__(self) -> "WorkerSupervisor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
