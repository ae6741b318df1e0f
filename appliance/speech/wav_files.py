"""Sentences written as WAV files: the speaker of a machine that has none.

Tests, benchmarks and anything downstream (a recorder, another player) read these. Each
file is written under a hidden temporary name and renamed into place, so whoever watches
the directory never sees half a file. Numbers continue after the files already there, so
a restart never overwrites what an earlier run wrote.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from appliance.speech.output import AudioOutputError, PlaybackStarted, SentenceAudio

NUMBERED_WAV = re.compile(r"^(\d{6,})(?:-t\d+)?\.wav$")


def wav_file_name(number: int, turn_id: int | None) -> str:
    """``000001-t0003.wav``: the directory's running number, then the story turn."""
    if turn_id is None:
        return f"{number:06d}.wav"
    return f"{number:06d}-t{turn_id:04d}.wav"


class WavFileOutput:
    name = "wav"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._next_number: int | None = None

    def _first_free_number(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = [
            int(match.group(1))
            for entry in os.listdir(self.directory)
            if (match := NUMBERED_WAV.match(entry))
        ]
        return max(numbers, default=0) + 1

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        try:
            if self._next_number is None:
                self._next_number = self._first_free_number()
        except OSError as exc:
            raise AudioOutputError(f"cannot write to {self.directory}: {exc}") from exc
        final = self.directory / wav_file_name(self._next_number, audio.turn_id)
        partial = self.directory / f".{final.name}.part"
        first_sample_at = time.monotonic()
        try:
            partial.write_bytes(audio.wav)
            os.replace(partial, final)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise AudioOutputError(f"cannot write to {self.directory}: {exc}") from exc
        self._next_number += 1
        started(final, first_sample_at)

    def close(self) -> None:
        return None
