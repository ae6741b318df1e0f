from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from appliance.speech import SpeechSettings
from appliance.speech.style import MOOD_LEANS, style_for_mood


def test_defaults() -> None:
    settings = SpeechSettings()
    assert settings.engine == "auto"
    assert settings.output == "auto"
    assert settings.wav_dir is None
    assert settings.voice == "en"
    assert settings.rate_wpm == 160
    assert settings.follow_mood is True
    assert settings.max_ahead_s == 6.0


def test_every_field_is_described() -> None:
    for name, field in SpeechSettings.model_fields.items():
        assert field.description, name


def test_wav_output_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs wav_dir"):
        SpeechSettings(output="wav")
    assert SpeechSettings(output="wav", wav_dir=tmp_path).wav_dir == tmp_path


def test_unknown_and_out_of_range_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SpeechSettings.model_validate({"volume": 3})
    with pytest.raises(ValidationError):
        SpeechSettings(rate_wpm=10)
    with pytest.raises(ValidationError):
        SpeechSettings.model_validate({"engine": "festival"})
    with pytest.raises(ValidationError):
        SpeechSettings(voice="en; rm -rf /")


def test_mood_leans_are_small() -> None:
    for lean in MOOD_LEANS.values():
        assert 0.85 <= lean.rate <= 1.15
        assert 0.85 <= lean.pitch <= 1.15


def test_the_voice_follows_the_mood_a_little() -> None:
    settings = SpeechSettings(rate_wpm=160)
    plain = style_for_mood(settings, None)
    happy = style_for_mood(settings, "happy")
    sad = style_for_mood(settings, "sad")
    angry = style_for_mood(settings, "angry")
    assert happy.rate_wpm > plain.rate_wpm > sad.rate_wpm
    assert happy.pitch > plain.pitch > sad.pitch
    assert angry.rate_wpm < plain.rate_wpm and angry.amplitude > plain.amplitude
    assert style_for_mood(settings, "not-a-mood") == plain
    steady = SpeechSettings(follow_mood=False)
    assert style_for_mood(steady, "happy") == style_for_mood(steady, "sad")
