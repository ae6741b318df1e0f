"""Speech settings: which voice speaks, where its audio goes, and how far it may lag."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SpeechEngineName = Literal["auto", "piper", "espeak", "pyttsx3", "silent"]
SpeechOutputName = Literal["auto", "aplay", "wav", "none"]


class SpeechSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: SpeechEngineName = Field(
        default="auto",
        description="Voice: auto or piper (the Piper voice in a process of its own, with "
        "espeak-ng speaking any sentence Piper cannot, and instead of Piper when it is "
        "missing or too slow here; the reason in the status), espeak (espeak-ng only), "
        "pyttsx3 (espeak-ng through the pyttsx3 library) or silent (text only).",
    )
    output: SpeechOutputName = Field(
        default="auto",
        description="Where the audio goes: auto (aplay when a sound card and aplay exist, "
        "else none), aplay (the ALSA player), wav (one WAV file per sentence in wav_dir) "
        "or none (text only).",
    )
    wav_dir: Path | None = Field(
        default=None,
        description="Directory that receives one WAV file per sentence when output is wav.",
    )
    aplay_device: str | None = Field(
        default=None,
        min_length=1,
        description="ALSA device for aplay -D (for example plughw:1,0). Unset: the default device.",
    )
    voice: str = Field(
        default="en",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_+./-]+$",
        description="espeak-ng voice name (espeak-ng --voices lists them), such as en, en-us "
        "or en+f3.",
    )
    rate_wpm: int = Field(
        default=160, ge=80, le=400, description="Speaking rate in words per minute."
    )
    follow_mood: bool = Field(
        default=True,
        description="Let the voice follow the reader's mood a little: happy and surprised a bit "
        "faster and higher, sad and afraid slower and lower, angry slower and firmer.",
    )
    max_ahead_s: float = Field(
        default=6.0,
        gt=0,
        le=300,
        description="Seconds of speech that may wait to be spoken before the storyteller "
        "pauses, so the spoken story never falls far behind the written one (with speech "
        "off: how far ahead of a reader reading at story.reading_wpm).",
    )
    piper_voice: Path | None = Field(
        default=None,
        description="Piper voice model (.onnx, with its .onnx.json beside it). Unset: the voice "
        "scripts/setup installs (en_US joe, medium).",
    )
    piper_threads: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Threads the Piper voice computes on (0: one per core). One leaves the "
        "other cores to the story model, which writes while the voice speaks.",
    )
    sentence_pause_s: float = Field(
        default=0.3,
        ge=0,
        le=2,
        description="Silence after each sentence (the voice's own silence is trimmed first); "
        "the mood leans it a little: longer for a sad or afraid reader, shorter for a happy one.",
    )
    turn_pause_s: float = Field(
        default=0.8,
        ge=0,
        le=5,
        description="At least this long between the end of one turn's speech and the next "
        "turn's (counting the sentence pause).",
    )

    @model_validator(mode="after")
    def _wav_output_needs_a_directory(self) -> Self:
        if self.output == "wav" and self.wav_dir is None:
            raise ValueError(
                "output 'wav' writes one WAV file per sentence, so it needs wav_dir: "
                "the directory to write them to"
            )
        return self
