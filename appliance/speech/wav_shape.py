"""Shaping a sentence's audio: the silence a voice puts around it trimmed away, and the
pause a listener expects after it put back, of a chosen length.

Piper's output starts with 0.05-0.33 s of silence and espeak-ng's with some too: left in,
the first sentence of an answer starts late and the pauses between sentences wander.
"""

from __future__ import annotations

import io
import wave

import numpy as np

SILENCE_LEVEL = 0.01
"""A sample quieter than this share of full scale is silence (about -40 dBFS)."""

MARGIN_S = 0.02
"""Kept around the first and last sound, so a soft onset or a breath is not cut."""


def shaped(wav: bytes, pause_s: float) -> bytes:
    """The WAV with its leading and trailing silence trimmed and ``pause_s`` of silence
    after it. Not 16-bit PCM, or silent throughout: returned as it is."""
    try:
        with wave.open(io.BytesIO(wav), "rb") as clip:
            params = clip.getparams()
            frames = clip.readframes(params.nframes)
    except (wave.Error, EOFError):
        return wav
    if params.sampwidth != 2 or params.nchannels < 1 or params.framerate <= 0:
        return wav
    samples = np.frombuffer(frames[: len(frames) - len(frames) % (2 * params.nchannels)], "<i2")
    samples = samples.reshape(-1, params.nchannels)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)).max(axis=1) > SILENCE_LEVEL * 32767)
    if loud.size == 0:
        return wav
    margin = round(MARGIN_S * params.framerate)
    first = max(0, int(loud[0]) - margin)
    last = min(len(samples), int(loud[-1]) + 1 + margin)
    pause = np.zeros((round(max(0.0, pause_s) * params.framerate), params.nchannels), "<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as clip:
        clip.setnchannels(params.nchannels)
        clip.setsampwidth(2)
        clip.setframerate(params.framerate)
        clip.writeframes(samples[first:last].tobytes() + pause.tobytes())
    return out.getvalue()


def _loud_span(wav: bytes) -> tuple[int, int, int, int]:
    """(first loud sample, one past the last, samples, rate); an all-silent clip gives
    (samples, samples, samples, rate)."""
    with wave.open(io.BytesIO(wav), "rb") as clip:
        rate = clip.getframerate()
        channels = clip.getnchannels()
        samples = np.frombuffer(clip.readframes(clip.getnframes()), "<i2").reshape(-1, channels)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)).max(axis=1) > SILENCE_LEVEL * 32767)
    if loud.size == 0:
        return len(samples), len(samples), len(samples), rate
    return int(loud[0]), int(loud[-1]) + 1, len(samples), rate


def leading_silence_s(wav: bytes) -> float:
    """Seconds before the first sound (for tests and the speech benchmark)."""
    first, _end, _total, rate = _loud_span(wav)
    return first / rate


def trailing_silence_s(wav: bytes) -> float:
    """Seconds after the last sound."""
    _first, end, total, rate = _loud_span(wav)
    return (total - end) / rate
