"""Speech settings: which voice speaks, where its audio goes, and how far it may lag."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SpeechEngineName = Literal["auto", "pyttsx3", "piper", "silent"]
SpeechOutputName = Literal["auto", "aplay", "wav", "none"]


class SpeechSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: SpeechEngineName = Field(
        default="auto",
        description="Voice: auto (espeak-ng when it works, else silent with the reason in the "
        "status), pyttsx3 (espeak-ng through the pyttsx3 library), piper (neural voice, "
        "optional extra: pip install moodtale[piper]) or silent (text only).",
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
        "that the piper extra installs (en_US joe, medium).",
    )

    @model_validator(mode="after")
    def _wav_output_needs_a_directory(self) -> Self:
        if self.output == "wav" and self.wav_dir is None:
            raise ValueError(
                "output 'wav' writes one WAV file per sentence, so it needs wav_dir: "
                "the directory to write them to"
            )
        return self
