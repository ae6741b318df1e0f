from __future__ import annotations

import threading
import time
from collections.abc import Callable

from appliance.supervision import Supervisor, Worker


def wait_for(test: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_dead_worker_is_reported_and_restarted_with_backoff() -> None:
    stop = threading.Event()
    runs: list[float] = []
    changes: list[str] = []

    def body(stop: threading.Event, beat: Callable[[], None]) -> None:
        runs.append(time.monotonic())
        if len(runs) <= 2:
            raise RuntimeError(f"boom {len(runs)}")
        while not stop.wait(0.01):
            beat()

    supervisor = Supervisor(stop, on_change=lambda worker, what: changes.append(what))
    worker = Worker("flaky", body, backoff_s=0.05)
    supervisor.add(worker)
    supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while len(runs) < 3:
            assert time.monotonic() < deadline
            supervisor.check()
            time.sleep(0.01)
        assert worker.restarts == 2
        assert worker.last_error == "RuntimeError: boom 2"
        assert changes == ["died", "restarted", "died", "restarted"]
        # The backoff doubled: the second wait was longer than the first.
        assert runs[2] - runs[1] > runs[1] - runs[0]
        wait_for(lambda: worker.alive)
        assert supervisor.all_fresh()
    finally:
        stop.set()
        supervisor.join(2)
    assert not worker.alive


def test_a_hung_worker_is_not_fresh() -> None:
    stop = threading.Event()
    release = threading.Event()

    def hangs(stop: threading.Event, beat: Callable[[], None]) -> None:
        beat()
        release.wait(10)  # stuck: no more beats

    supervisor = Supervisor(stop)
    supervisor.add(Worker("hangs", hangs, stale_after_s=0.2))
    supervisor.start()
    try:
        assert supervisor.all_fresh()
        time.sleep(0.4)
        assert not supervisor.all_fresh()
    finally:
        release.set()
        stop.set()
        supervisor.join(2)


def test_a_worker_that_returns_early_is_dead_too() -> None:
    stop = threading.Event()
    supervisor = Supervisor(stop)
    worker = Worker("quits", lambda stop, beat: None)
    supervisor.add(worker)
    supervisor.start()
    wait_for(lambda: not worker.alive)
    supervisor.check()
    assert worker.last_error == "stopped by itself"
    assert worker.restart_at is not None
    stop.set()
