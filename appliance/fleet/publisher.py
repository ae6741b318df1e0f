"""The device side of fleet mode: one ``MoodSummary`` row per second, delivered to a landing.

    perception thread ──observe()──▶ PerSecondRollup ──row/s──▶ (memory) ──▶ writer thread
        writer: appends rows to the spool, closes a file every ``rotate_s`` into the outbox
        sender: delivers outbox files oldest first; deletes each once the landing has it

``observe`` only adds numbers under a short lock: perception never waits for a disk or a
network. While the landing is unreachable files wait in the spool (bounded by
``max_spool_mb``, oldest dropped and counted) and the sender retries, backing off from
``retry_min_s`` to ``retry_max_s``; they go out in order when it is back. A file is
deleted only after the landing acknowledged it, and keeps its name all the way, so the
one resend a crash can cause lands on the same name with the same bytes.

The landing format is in ``appliance.fleet.rows`` (re-exported here for the job).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from appliance.events import FaceReading, MoodSummary
from appliance.fleet.landing import Landing, build_landing
from appliance.fleet.per_second import PerSecondRollup
from appliance.fleet.rows import (
    LANDING_SCHEMA_FIELDS,
    as_landing_name,
    encode_landing_file,
    encode_rows,
    landing_file_name,
    row_to_summary,
    summary_to_row,
)
from appliance.fleet.settings import FleetSettings
from appliance.fleet.spool import Spool

__all__ = [
    "LANDING_SCHEMA_FIELDS",
    "FleetPublisher",
    "landing_file_name",
    "row_to_summary",
    "summary_to_row",
]

log = logging.getLogger(__name__)

ROWS_IN_MEMORY = 3600
"""Rows waiting for the writer thread (an hour's worth: only a stuck disk fills it)."""
SENDER_IDLE_S = 1.0

SendOutcome = Literal["sent", "nothing to send", "failed"]


@dataclass
class FleetCounts:
    rows_spooled: int = 0
    rows_published: int = 0
    files_published: int = 0
    rows_dropped: int = 0
    files_dropped: int = 0
    landing_error: str | None = None
    spool_error: str | None = None
    retry_at: float | None = None
    last_delivered_at: float | None = None


class FleetPublisher:
    """Owns the spool, a writer thread and a sender thread; ``close`` flushes and stops."""

    def __init__(
        self, settings: FleetSettings, state_dir: Path, *, landing: Landing | None = None
    ) -> None:
        self.settings = settings
        self.device = settings.device_name
        self.spool = Spool(state_dir, self.device)
        if landing is None:
            try:
                landing = build_landing(settings)
            except Exception as exc:  # reported, and tried again, by the sender
                log.warning("fleet landing cannot be set up yet: %s", exc)
        self._landing = landing
        self._landing_description = landing.description if landing else settings.landing
        self._rows: deque[MoodSummary] = deque()
        self.rollup = PerSecondRollup(settings.venue, self.device, self._queue)
        self._counts = FleetCounts()
        self._lock = threading.Lock()
        self._rows_ready = threading.Event()
        self._wake_sender = threading.Event()
        self._closing = threading.Event()
        self._writer_done = threading.Event()
        self._abandon = threading.Event()
        self._closed = False
        self._tick_s = min(0.25, settings.rotate_s / 4)
        self._writer = threading.Thread(target=self._write_loop, name="fleet-writer", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="fleet-sender", daemon=True)
        self._writer.start()
        self._sender.start()

    # -- the perception thread's side ---------------------------------------------------

    def observe(self, readings: Sequence[FaceReading], at: float) -> None:
        """One frame's face readings, read at unix time ``at``. Never blocks on I/O."""
        if not self._closing.is_set():
            self.rollup.add(readings, at)

    def _queue(self, summary: MoodSummary) -> None:
        if len(self._rows) >= ROWS_IN_MEMORY:
            self._rows.popleft()
            with self._lock:
                self._counts.rows_dropped += 1
        self._rows.append(summary)
        self._rows_ready.set()

    # -- the writer thread ----------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while not self._closing.is_set():
                self._rows_ready.wait(self._tick_s)
                self._rows_ready.clear()
                self._write_step_logged(final=False)
            self.rollup.finish()
            self._write_step_logged(final=True)
        finally:
            self.spool.shut()
            self._writer_done.set()
            self._wake_sender.set()

    def _write_step_logged(self, *, final: bool) -> None:
        try:
            self._write_step(final=final)
        except Exception:  # a bug must not stop the rows: log it, go on next tick
            log.exception("fleet writer")

    def _write_step(self, *, final: bool) -> None:
        self.rollup.finish_stale()
        rows = []
        while self._rows:
            rows.append(self._rows.popleft())
        appended = False
        try:
            if rows:
                self.spool.append(encode_rows(rows), len(rows))
                appended = True
                with self._lock:
                    self._counts.rows_spooled += len(rows)
            opened = self.spool.opened_at
            due = opened is not None and time.monotonic() - opened >= self.settings.rotate_s
            if opened is not None and (final or due):
                if self.spool.close_file() is not None:
                    self._wake_sender.set()
                dropped = self.spool.drop_oldest_over(int(self.settings.max_spool_mb * 1e6))
                with self._lock:
                    self._counts.files_dropped += dropped.files
                    self._counts.rows_dropped += dropped.rows
            self._spool_ok()
        except OSError as exc:
            if rows and not appended:
                self._rows.extendleft(reversed(rows))  # tried again next tick
            self._spool_failed(exc)

    def _spool_ok(self) -> None:
        with self._lock:
            if self._counts.spool_error is not None:
                log.info("fleet spool writable again")
            self._counts.spool_error = None

    def _spool_failed(self, exc: OSError) -> None:
        message = f"{exc.strerror or exc} ({self.spool.root})"
        with self._lock:
            first = self._counts.spool_error != message
            self._counts.spool_error = message
        (log.warning if first else log.debug)("fleet spool cannot be written: %s", message)

    # -- the sender thread ----------------------------------------------------------------

    def _send_loop(self) -> None:
        backoff = self.settings.retry_min_s
        while not self._abandon.is_set():
            final = self._writer_done.is_set()
            try:
                outcome = self._send_oldest()
            except Exception as exc:  # the spool unreadable, or a bug: back off and retry
                log.exception("fleet sender")
                self.spool.not_delivered()
                self._landing_failed(exc)
                outcome = "failed"
            if outcome == "sent":
                backoff = self.settings.retry_min_s
            elif final:
                return  # anything left waits in the spool for the next start
            elif outcome == "nothing to send":
                self._wake_sender.wait(SENDER_IDLE_S)
                self._wake_sender.clear()
            else:
                with self._lock:
                    self._counts.retry_at = time.monotonic() + backoff
                # New files do not cut the wait short; closing does (for one last try).
                if self._closing.wait(backoff):
                    self._writer_done.wait(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_s)

    def _send_oldest(self) -> SendOutcome:
        spooled = self.spool.next_to_send()
        if spooled is None:
            return "nothing to send"
        try:
            data = spooled.path.read_bytes()
        except FileNotFoundError:
            self.spool.delivered(spooled)  # dropped by the spool bound meanwhile
            return "sent"
        try:
            landing_file = encode_landing_file(data)
        except (ValueError, TypeError, OverflowError) as exc:  # a damaged disk: never resent
            log.error("fleet spool: %s is not rows (%s); dropped", spooled.path.name, exc)
            self.spool.delivered(spooled)
            with self._lock:
                self._counts.files_dropped += 1
                self._counts.rows_dropped += data.count(b"\n")
            return "sent"
        try:
            if self._landing is None:
                self._landing = build_landing(self.settings)
                self._landing_description = self._landing.description
            self._landing.deliver(as_landing_name(spooled.path.name), landing_file)
        except Exception as exc:  # every landing failure is retried, none is fatal
            self.spool.not_delivered()
            self._landing_failed(exc)
            return "failed"
        self.spool.delivered(spooled)
        with self._lock:
            recovered = self._counts.landing_error is not None
            self._counts.rows_published += data.count(b"\n")
            self._counts.files_published += 1
            self._counts.last_delivered_at = time.time()
            self._counts.landing_error = self._counts.retry_at = None
        if recovered:
            log.info("fleet landing reachable again (%s)", self._landing_description)
        return "sent"

    def _landing_failed(self, exc: Exception) -> None:
        message = str(exc) or type(exc).__name__
        with self._lock:
            first = self._counts.landing_error is None
            self._counts.landing_error = message
        if first:
            log.warning("fleet landing unreachable, rows wait in the spool: %s", message)
        else:
            log.debug("fleet landing still unreachable: %s", message)

    # -- what the page sees ---------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        files, spool_bytes = self.spool.pending()
        with self._lock:
            counts = FleetCounts(**vars(self._counts))
        now = time.monotonic()
        if counts.landing_error is not None:
            state = "waiting for the landing"
        elif files:
            state = "delivering"
        else:
            state = "up to date"
        return {
            "enabled": True,
            "venue": self.settings.venue,
            "device": self.device,
            "landing": self._landing_description,
            "state": state,
            "rows_published": counts.rows_published,
            "files_published": counts.files_published,
            "rows_spooled": counts.rows_spooled,
            "files_pending": files,
            "spool_mb": round(spool_bytes / 1e6, 3),
            "rows_dropped": counts.rows_dropped,
            "files_dropped": counts.files_dropped,
            "last_error": counts.landing_error or counts.spool_error,
            "last_delivered_at": counts.last_delivered_at,
            "retry_in_s": round(max(0.0, counts.retry_at - now), 1)
            if counts.retry_at is not None and counts.landing_error is not None
            else None,
        }

    def problem(self) -> str | None:
        """A sentence for the page when fleet rows are not getting through."""
        with self._lock:
            counts = FleetCounts(**vars(self._counts))
        dropped = (
            f" The spool was full: {counts.rows_dropped} rows were dropped."
            if counts.rows_dropped
            else ""
        )
        if counts.spool_error is not None:
            return f"Fleet: rows cannot be kept on disk: {counts.spool_error}.{dropped}"
        if counts.landing_error is not None:
            files, _ = self.spool.pending()
            return (
                f"Fleet: the landing is unreachable ({counts.landing_error}); "
                f"{files} files wait in the spool and are sent when it is back.{dropped}"
            )
        return None

    # -- stopping ---------------------------------------------------------------------------

    def close(self, timeout: float = 1.5) -> None:
        """Finish the current second, close the file being filled into the outbox, and
        give the sender ``timeout`` to deliver what waits; the rest goes at the next start."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        self._closing.set()
        self._rows_ready.set()
        self._wake_sender.set()
        self._writer.join(max(0.0, deadline - time.monotonic()))
        self._sender.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()
        if self._landing is not None and not self._sender.is_alive():
            try:
                self._landing.close()
            except Exception as exc:
                log.debug("closing the fleet landing: %s", exc)
