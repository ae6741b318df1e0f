"""Sentences played through ALSA's aplay, one at a time, by one owner.

A separate aplay process per sentence keeps a stuck sound card from taking the narrator
down with it: it can be terminated at once on close. "Device or resource busy" is common
on small boards (another program, or the previous aplay still letting go of the card), so
it is retried with growing pauses before the sentence is given up.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from appliance.speech.output import AudioOutputError, PlaybackStarted, SentenceAudio

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 0.1
"""aplay fails within this long when it cannot open the device; still running after it,
it is playing."""


class AplayOutput:
    name = "aplay"
    realtime = True
    """Plays as it goes: a sentence takes as long as it sounds."""

    def __init__(
        self,
        executable: str,
        device: str | None = None,
        busy_retries: int = 5,
        first_backoff_s: float = 0.2,
    ) -> None:
        self.executable = executable
        self.device = device
        self.busy_retries = busy_retries
        self.first_backoff_s = first_backoff_s
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _command(self, path: Path) -> list[str]:
        device = ["-D", self.device] if self.device else []
        return [self.executable, "-q", *device, str(path)]

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="moodtale-aplay-")
        path = Path(self._tmp.name) / f"{audio.seq:06d}.wav"
        try:
            path.write_bytes(audio.wav)
            self._play_file(path, started, stop)
        except OSError as exc:
            raise AudioOutputError(f"aplay failed: {exc}") from exc
        finally:
            path.unlink(missing_ok=True)

    def _play_file(self, path: Path, started: PlaybackStarted, stop: threading.Event) -> None:
        announced = False

        def announce(file: Path | None, first_sample_at: float) -> None:
            nonlocal announced
            if not announced:  # a retry after a late "busy" is not a second start
                announced = True
                started(file, first_sample_at)

        backoff = self.first_backoff_s
        for attempt in range(self.busy_retries + 1):
            # stderr to a file, not a pipe: reading a pipe waits for every process holding
            # it, and a pipe nobody reads can fill and stall aplay.
            with tempfile.TemporaryFile() as stderr:
                returncode = self._run_once(path, stderr, announce, stop)
                stderr.seek(0)
                error = stderr.read().decode(errors="replace").strip()
            if returncode is None or returncode == 0:
                return  # stopped, or played
            error = error or f"exit status {returncode}"
            if "busy" not in error.lower() or attempt == self.busy_retries:
                raise AudioOutputError(f"aplay failed: {error}")
            log.info("sound device busy; trying again in %.1f s", backoff)
            if stop.wait(backoff):
                return
            backoff *= 2

    def _run_once(
        self,
        path: Path,
        stderr: IO[bytes],
        started: PlaybackStarted,
        stop: threading.Event,
    ) -> int | None:
        """One aplay run: its exit status, or None when stopped. ``started`` is told once
        aplay has held the device past the moment it would have failed to open it."""
        process = subprocess.Popen(
            self._command(path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        began = time.monotonic()
        try:
            returncode = self._wait(process, stop, began + STARTUP_GRACE_S)
            if returncode is None and stop.is_set():
                return None
            if returncode in (None, 0):
                started(None, began)
            if returncode is None:
                returncode = self._wait(process, stop, None)
            return returncode
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    @staticmethod
    def _wait(
        process: subprocess.Popen[bytes], stop: threading.Event, deadline: float | None
    ) -> int | None:
        """The exit status, or None when ``stop`` was set or ``deadline`` passed first."""
        while not stop.is_set():
            step = 0.05
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return process.poll()
                step = min(step, left)
            try:
                return process.wait(timeout=step)
            except subprocess.TimeoutExpired:
                continue
        return None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
