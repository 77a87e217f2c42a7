"""The `serve --workers` supervisor's stop: a worker that the forwarded SIGTERM ends before it
installed its own handlers (still starting, so it had accepted nothing) is a clean stop; a
worker that fails its stop is not."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator

import pytest

from gateway.workers import Supervisor

STARTING = "import time; time.sleep(30)"  # dies of SIGTERM, as a worker still importing does
FAILING = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
    "time.sleep(30)"
)


@pytest.fixture
def restored_signals() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def run_and_stop(code: str) -> int:
    supervisor = Supervisor([sys.executable, "-c", code], 2, grace=1.0)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        return supervisor.run()
    finally:
        timer.cancel()


def test_a_worker_stopped_while_starting_is_a_clean_stop(restored_signals: None) -> None:
    assert run_and_stop(STARTING) == 0


def test_a_worker_that_fails_its_stop_fails_the_supervisor(restored_signals: None) -> None:
    assert run_and_stop(FAILING) == 1
