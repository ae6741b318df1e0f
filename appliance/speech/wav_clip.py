"""Reading just enough of a WAV to know how long it lasts and that it is one."""

from __future__ import annotations

import io
import wave


class NotAWavError(ValueError):
    pass


def wav_duration_s(data: bytes) -> float:
    """Seconds of audio in a RIFF/WAVE byte string; raises NotAWavError for anything else,
    so a broken synthesis is caught where it happens rather than at the speaker."""
    try:
        with wave.open(io.BytesIO(data), "rb") as clip:
            rate = clip.getframerate()
            frames = clip.getnframes()
    except (wave.Error, EOFError) as exc:
        raise NotAWavError(f"not a WAV file: {exc}") from exc
    if rate <= 0:
        raise NotAWavError(f"not a WAV file: sample rate {rate}")
    return frames / rate
