"""How a sentence is voiced: rate, pitch and loudness, nudged a little by the reader's mood.

The nudges are small (about ten to fifteen percent) on purpose: a voice that swings with
every flicker of a face sounds broken, one that leans a little sounds like a storyteller.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.speech.settings import SpeechSettings

NEUTRAL_PITCH = 50
"""espeak-ng's own default pitch (its scale runs from 0 to 99)."""

NEUTRAL_AMPLITUDE = 100
"""espeak-ng's own default amplitude (its scale runs from 0 to 200)."""


@dataclass(frozen=True, slots=True)
class SpeechStyle:
    """What an engine needs to voice one sentence; engines ignore what they cannot do."""

    voice: str = "en"
    rate_wpm: int = 160
    pitch: int = NEUTRAL_PITCH
    amplitude: int = NEUTRAL_AMPLITUDE
    pause_s: float = 0.3
    """Silence after the sentence."""


@dataclass(frozen=True, slots=True)
class MoodLean:
    rate: float
    pitch: float
    amplitude: float
    pause: float = 1.0


MOOD_LEANS: dict[str, MoodLean] = {
    "happy": MoodLean(rate=1.10, pitch=1.12, amplitude=1.0, pause=0.85),
    "surprise": MoodLean(rate=1.12, pitch=1.15, amplitude=1.05, pause=0.85),
    "sad": MoodLean(rate=0.87, pitch=0.88, amplitude=0.9, pause=1.3),
    "fear": MoodLean(rate=0.90, pitch=0.90, amplitude=0.95, pause=1.2),
    # Anger reads as slower and firmer rather than faster: deliberate, a little louder.
    "angry": MoodLean(rate=0.92, pitch=0.95, amplitude=1.15, pause=1.1),
    "disgust": MoodLean(rate=0.95, pitch=0.95, amplitude=1.0),
    "neutral": MoodLean(rate=1.0, pitch=1.0, amplitude=1.0),
}


def style_for_mood(settings: SpeechSettings, mood: str | None) -> SpeechStyle:
    """The settings' voice, leaning toward ``mood`` when ``follow_mood`` is on.

    Unknown or missing moods get the plain voice, so a new label upstream never breaks speech.
    """
    lean = MOOD_LEANS.get(mood or "neutral", MOOD_LEANS["neutral"])
    if not settings.follow_mood:
        lean = MOOD_LEANS["neutral"]
    return SpeechStyle(
        voice=settings.voice,
        rate_wpm=max(80, min(450, round(settings.rate_wpm * lean.rate))),
        pitch=max(0, min(99, round(NEUTRAL_PITCH * lean.pitch))),
        amplitude=max(0, min(200, round(NEUTRAL_AMPLITUDE * lean.amplitude))),
        pause_s=round(settings.sentence_pause_s * lean.pause, 3),
    )


def estimated_duration_s(text: str, rate_wpm: int) -> float:
    """Seconds a sentence will take before it is synthesized: words at the speaking rate,
    plus the short pause that ends a sentence."""
    words = len(text.split())
    return words * 60.0 / max(rate_wpm, 1) + 0.3
