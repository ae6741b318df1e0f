"""Worker threads that are watched, restarted with backoff when they die, and reported.

Each worker's body runs until the shared stop event is set. A body that raises or
returns early is dead: it is logged with its error and started again after a backoff
that doubles up to a limit (and resets once a worker has run for a while). Workers beat
a heartbeat as they loop; the service watchdog is only fed while every beat is fresh, so
systemd restarts an appliance whose worker hangs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0
"""A worker that ran this long before dying starts again after the first backoff."""


@dataclass
class Worker:
    name: str
    body: Callable[[threading.Event, Callable[[], None]], None]
    """``body(stop, beat)``: loop until ``stop`` is set, calling ``beat()`` each round."""
    stale_after_s: float = 30.0
    """A heartbeat older than this means the worker hangs."""
    thread: threading.Thread | None = None
    restarts: int = 0
    last_error: str | None = None
    started_at: float = 0.0
    last_beat: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float | None = None
    _error_lock: threading.Lock = field(default_factory=threading.Lock)

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def fresh(self, now: float) -> bool:
        return self.alive and now - self.last_beat <= self.stale_after_s

    def describe(self) -> dict[str, object]:
        return {
            "alive": self.alive,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (systemd) and SIGINT (Ctrl-C) set ``stop``; the owner shuts down cleanly."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


class Supervisor:
    def __init__(
        self,
        stop: threading.Event,
        on_change: Callable[[Worker, str], None] = lambda worker, what: None,
    ) -> None:
        self.stop = stop
        self.workers: dict[str, Worker] = {}
        self.on_change = on_change

    def add(self, worker: Worker) -> None:
        self.workers[worker.name] = worker

    def _start(self, worker: Worker) -> None:
        def run() -> None:
            try:
                worker.body(self.stop, worker.beat)
                if not self.stop.is_set():
                    with worker._error_lock:
                        worker.last_error = "stopped by itself"
            except Exception as exc:  # the worker's boundary: report, the supervisor restarts
                with worker._error_lock:
                    worker.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("worker %s died", worker.name)

        worker.started_at = time.monotonic()
        worker.beat()
        worker.thread = threading.Thread(target=run, name=worker.name, daemon=True)
        worker.thread.start()

    def start(self) -> None:
        for worker in self.workers.values():
            self._start(worker)

    def check(self) -> None:
        """Restart dead workers whose backoff has passed. Called often by the main thread."""
        now = time.monotonic()
        for worker in self.workers.values():
            if self.stop.is_set() or worker.alive:
                continue
            if worker.restart_at is None:
                if now - worker.started_at >= HEALTHY_AFTER_S:
                    worker.backoff_s = FIRST_BACKOFF_S
                worker.restart_at = now + worker.backoff_s
                log.warning(
                    "worker %s stopped (%s); restarting in %.0f s",
                    worker.name,
                    worker.last_error,
                    worker.backoff_s,
                )
                self.on_change(worker, "died")
                worker.backoff_s = min(worker.backoff_s * 2, MAX_BACKOFF_S)
            elif now >= worker.restart_at:
                worker.restart_at = None
                worker.restarts += 1
                self._start(worker)
                self.on_change(worker, "restarted")

    def all_fresh(self) -> bool:
        now = time.monotonic()
        return all(worker.fresh(now) for worker in self.workers.values())

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.workers.values():
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
