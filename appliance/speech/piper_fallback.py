"""Piper when it can, espeak-ng when it cannot: the voice ``speech.engine = "auto"`` picks.

A sentence Piper cannot say (its process died, hung, or is starting again) is spoken by
espeak-ng at once, so nothing is lost; the status says why. A Piper that is too slow for
the device (its real-time factor over ``max_rtf`` on the first sentences) is given up for
good, with the reason, so the story is never held up by its own voice.
"""

from __future__ import annotations

import logging
import statistics
import time

from appliance.speech.engine import SpeechEngine, SpeechEngineError
from appliance.speech.piper_process import READY_TIMEOUT_S, PiperEngine
from appliance.speech.style import SpeechStyle
from appliance.speech.wav_clip import wav_duration_s

log = logging.getLogger(__name__)

MAX_RTF = 0.8
"""Seconds of synthesis per second of speech beyond which Piper is too slow here: the next
sentence is synthesized while one plays, so up to about 0.8 (a Pi 4 on one thread: 0.77,
published) the voice keeps up, its first sentence of a turn only starting later; beyond, on
a CPU the story model shares, sentences would wait for their voice."""

RTF_SENTENCES = 5
"""Sentences (of a second or more) timed before judging the speed."""


class PiperWithFallback:
    def __init__(
        self,
        piper: PiperEngine,
        fallback: SpeechEngine,
        *,
        first_wait_s: float = READY_TIMEOUT_S,
        max_rtf: float = MAX_RTF,
    ) -> None:
        self.piper = piper
        self.fallback = fallback
        self.max_rtf = max_rtf
        self._first_wait_s = first_wait_s
        self._speaking = piper.name
        self._fallback_reason = ""
        self._given_up = ""
        self._rtfs: list[float] = []

    @property
    def name(self) -> str:
        """The voice that spoke the last sentence."""
        return self._speaking

    @property
    def problem(self) -> str:
        if self._given_up:
            return f"{self._given_up}: using {self.fallback.name}"
        if self._speaking != self.piper.name and self._fallback_reason:
            return f"{self._fallback_reason}: using {self.fallback.name}"
        return ""

    def unavailable(self) -> str | None:
        return self.piper.unavailable()

    def warm(self) -> None:
        """Start loading the voice now (the narrator's synth thread calls this first)."""
        if not self._given_up:
            self.piper.start()

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        wait, self._first_wait_s = self._first_wait_s, 0.0
        if not self._given_up and self.piper.ready(wait_s=wait):
            began = time.monotonic()
            try:
                wav = self.piper.synthesize(text, style)
            except SpeechEngineError as exc:
                self._fallback_reason = self.piper.problem or str(exc)
                log.warning(
                    "piper could not say a sentence (%s): using %s", exc, self.fallback.name
                )
            else:
                self._speaking = self.piper.name
                if wav is not None:
                    self._judge_speed(time.monotonic() - began, wav_duration_s(wav))
                return wav
        elif not self._given_up:
            self._fallback_reason = self.piper.problem or "Piper is starting"
        self._speaking = self.fallback.name
        return self.fallback.synthesize(text, style)

    def _judge_speed(self, took_s: float, audio_s: float) -> None:
        if audio_s < 1.0 or len(self._rtfs) >= RTF_SENTENCES:
            return
        self._rtfs.append(took_s / audio_s)
        if len(self._rtfs) == RTF_SENTENCES:
            rtf = statistics.median(self._rtfs)
            log.info("piper: real-time factor %.3f here", rtf)
            if rtf > self.max_rtf:
                self._given_up = (
                    f"Piper is too slow here (real-time factor {rtf:.2f}, over {self.max_rtf:g})"
                )
                log.warning("%s: using %s", self._given_up, self.fallback.name)
                self.piper.close()

    def close(self) -> None:
        self.piper.close()
        self.fallback.close()
