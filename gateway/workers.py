"""`gateway serve --workers N`: N gateway processes sharing one port and one PostgreSQL database.

One Python process serves on one core. With a PostgreSQL store the gateway already runs as
several replicas on one database (leases with SKIP LOCKED, dedupe by primary key, pauses read
from the database), so N workers are N replicas on one host: each listens on the same port with
SO_REUSEPORT (the kernel spreads connections over them) and carries its own replica identity
(`<replica>-w<i>`), so that a restarted worker hands back exactly its own leases.

This process only supervises: it starts the workers, restarts one that dies (with a growing
pause, so a worker that cannot start does not spin), forwards SIGTERM/SIGINT (drain and stop)
and SIGHUP to all of them, and exits 0 once every worker has stopped cleanly. SQLite is owned by
one process (a lock on its file), so workers need PostgreSQL.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("gateway")

POLL = 0.2  # seconds between looks at the workers
FIRST_PAUSE = 1.0  # before restarting a worker that died; doubles up to MAX_PAUSE
MAX_PAUSE = 30.0
STEADY = 60.0  # a worker up this long has its pause reset
WORKER_OPTION = "--worker"


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    pause: float = FIRST_PAUSE
    due: float = 0.0  # when it may be started again
    exits: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(self, command: Sequence[str], count: int, grace: float) -> None:
        """`command`: how to run one worker (`WORKER_OPTION <i>` is appended)."""
        self._command = list(command)
        self._workers = [_Worker(i) for i in range(count)]
        self._grace = grace
        self._stopping = False
        self._signals: list[int] = []

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        log.info("starting %d workers", len(self._workers))
        for worker in self._workers:
            self._start(worker)
        while not self._stopping:
            self._forward()
            self._tend()
            time.sleep(POLL)
        return self._stop()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)
        if signum in (signal.SIGINT, signal.SIGTERM):
            self._stopping = True

    def _forward(self) -> None:
        while self._signals and not self._stopping:
            signum = self._signals.pop(0)
            for worker in self._workers:
                if worker.proc is not None and worker.proc.poll() is None:
                    worker.proc.send_signal(signum)

    def _start(self, worker: _Worker) -> None:
        command = [*self._command, WORKER_OPTION, str(worker.index)]
        worker.proc = subprocess.Popen(command)
        worker.started = time.monotonic()

    def _tend(self) -> None:
        """Restart workers that died, each after its pause."""
        now = time.monotonic()
        for worker in self._workers:
            proc = worker.proc
            if proc is None:
                if now >= worker.due:
                    self._start(worker)
                continue
            code = proc.poll()
            if code is None:
                if now - worker.started >= STEADY:
                    worker.pause = FIRST_PAUSE
                continue
            worker.exits.append(code)
            log.warning(
                "worker %d (pid %d) exited with %d; restarting it in %.0fs",
                worker.index, proc.pid, code, worker.pause,
            )
            worker.proc = None
            worker.due = now + worker.pause
            worker.pause = min(worker.pause * 2, MAX_PAUSE)

    def _stop(self) -> int:
        """Pass the stop on, wait for the workers to drain, then end any that did not."""
        log.info("stopping %d workers", len(self._workers))
        running = [w.proc for w in self._workers if w.proc is not None and w.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace + 10.0
        codes = []
        for proc in running:
            try:
                codes.append(proc.wait(max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in time; killing it", proc.pid)
                proc.kill()
                codes.append(proc.wait())
        log.info("stopped")
        # A worker still starting (before its own handlers, so before it listened) dies of the
        # SIGTERM itself: it had accepted nothing, so that is a clean stop too.
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1


def command(config: str, verbose: bool) -> list[str]:
    """The command line of one worker: `gateway serve` on the same config."""
    return [sys.executable, "-m", "gateway", "serve", "-c", config, *(["-v"] if verbose else [])]
