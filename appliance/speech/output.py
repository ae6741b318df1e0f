"""Where synthesized sentences go: the interface, and the output that goes nowhere."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


class AudioOutputError(RuntimeError):
    """One sentence could not be played or written; the narrator skips it and carries on."""


@dataclass(frozen=True, slots=True)
class SentenceAudio:
    """One synthesized sentence on its way to the speaker."""

    seq: int
    turn_id: int | None
    wav: bytes
    duration_s: float
    text: str = ""


PlaybackStarted = Callable[[Path | None, float], None]
"""Told once per sentence: the file written (if it stays), and time.monotonic() of its
first sample."""


@runtime_checkable
class AudioOutput(Protocol):
    @property
    def name(self) -> str: ...

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        """Play (or write) one sentence, returning when it is done, or soon after ``stop``
        is set. Calls ``started`` once, as the audio begins.

        Called only from the narrator's playback thread: one owner for the device.
        Raises AudioOutputError when the sentence could not be played.
        """

    def close(self) -> None: ...


class NoOutput:
    """Text only: the audio, if any, is dropped at once."""

    name = "none"

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        started(None, time.monotonic())

    def close(self) -> None:
        return None
