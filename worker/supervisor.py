"""Keeping ``serve``'s worker child running: a dead one is started again.

A worker can die under a running studio: the kernel's out-of-memory killer during a large
training run (SIGKILL), a crash in a native library. Before, the studio went on taking labels
and queueing jobs that nothing ran. :class:`WorkerSupervisor` polls the child and starts a new
one when it has died; the new consumer fails the job the dead one left running and takes the
queue from there (:mod:`worker.reaper`). A child that keeps dying (a bad setting, a broken
install) is restarted after 1, 2, 4, … s, at most :data:`MAX_DELAY_S` apart, each exit reported
on stderr with the log to read. A child stopped on purpose (SIGTERM or SIGINT: someone's
``kill``, a service manager stopping the whole group) is left stopped.
"""
from __future__ import annotations

import atexit
import signal
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
STOPPED_ON_PURPOSE = (-signal.SIGTERM, -signal.SIGINT)
"""Exit codes (``Popen.returncode``: minus the signal) of a child that was asked to stop."""


class WorkerSupervisor:
    """Runs ``start()`` (which starts a worker child and returns its handle; it should not
    register its own stop at exit: the supervisor stops it) and, from a daemon thread, again
    whenever that child has died, until :meth:`stop` (also run at interpreter exit).
    ``report`` receives the one-line notices (default: stderr)."""

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
        try:
            print(f"worker: {line}", file=self._report or sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr must not end the watch
            pass

    def _watch(self) -> None:
        # A restarted child was started from this thread, and Linux sends it SIGTERM when the
        # thread ends: so the thread never ends on an error, only after stop() has stopped the
        # child (the lock) or once the child was stopped on purpose.
        delay = 1.0
        while True:
            time.sleep(self.poll_s)
            try:
                delay = self._look(delay)
            except Exception as err:  # e.g. fork failed for lack of memory: try again later
                self._say(f"could not start a new worker ({err!r}); trying again in "
                          f"{delay:.0f} s")
                time.sleep(delay)
                delay = min(2 * delay, MAX_DELAY_S)
            if delay < 0:
                return

    def _look(self, delay: float) -> float:
        """One look at the child: restart it when it died. The next delay; -1: stop watching."""
        with self._lock:
            if self._stopping:
                return -1.0
            if self._proc.alive():
                return delay
            code = self._proc.popen.returncode
            ran = time.monotonic() - self._started_at
            if code in STOPPED_ON_PURPOSE:
                self._say(f"the worker (pid {self._proc.pid}) was stopped (signal {-code}); "
                          "not starting another (restart serve to get one)")
                return -1.0
            delay = 1.0 if ran >= STEADY_S else delay
            self._say(f"the worker (pid {self._proc.pid}) exited with code {code} after "
                      f"{ran:.0f} s; starting a new one in {delay:.0f} s (its log: "
                      f"{self._proc.log_path})")
        time.sleep(delay)
        with self._lock:
            if self._stopping:
                return -1.0
            self._proc = self._start()
            self._started_at = time.monotonic()
            self.restarts += 1
            self._say(f"started again (pid {self._proc.pid}, restart {self.restarts})")
        return min(2 * delay, MAX_DELAY_S)

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
