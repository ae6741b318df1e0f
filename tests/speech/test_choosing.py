"""Choosing engine and output from settings and from what this machine has."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from appliance.speech import SpeechSettings, build_narrator, pick_engine, sound_device_present
from appliance.speech.aplay_output import AplayOutput
from appliance.speech.espeak_command import EspeakCommandEngine
from appliance.speech.piper_process import PiperEngine

PI_CARDS = """\
 0 [Headphones     ]: bcm2835_headphonbcm2835 Headphones - bcm2835 Headphones
                      bcm2835 Headphones
 1 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0
"""


def test_this_machine_has_no_sound_device() -> None:
    assert not sound_device_present()


def test_auto_output_without_a_sound_device_is_text_only() -> None:
    narrator = build_narrator(SpeechSettings())
    narrator.close()
    status = narrator.status()
    assert status["output"] == "none"
    assert status["mode"] == "text only"
    assert status["problem"] == "no sound device: text only"
    assert status["summary"] == "text only (no sound device)"
    assert not narrator.speaking


def test_a_sound_card_is_read_from_alsa(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.write_text(PI_CARDS)
    assert sound_device_present(cards) == (shutil.which("aplay") is not None)
    cards.write_text("--- no soundcards ---\n")
    assert not sound_device_present(cards)
    assert not sound_device_present(tmp_path / "missing")


def test_auto_output_with_a_sound_device_plays_through_aplay() -> None:
    narrator = build_narrator(SpeechSettings(), sound_device=lambda: True)
    narrator.close()
    assert isinstance(narrator.output, AplayOutput)
    assert narrator.status()["mode"] == "spoken"
    assert narrator.status()["summary"] == "piper voice through aplay"


def test_explicit_aplay_without_aplay_is_text_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    narrator = build_narrator(SpeechSettings(output="aplay"))
    narrator.close()
    assert narrator.status()["output"] == "none"
    assert "aplay not found" in narrator.status()["problem"]


def test_without_any_voice_the_story_is_text_only(tmp_path: Path) -> None:
    settings = SpeechSettings(output="wav", wav_dir=tmp_path)
    missing = EspeakCommandEngine(executable="/nonexistent/espeak-ng")
    engine, problem = pick_engine(settings, [missing])
    assert engine.name == "silent"
    assert problem.startswith("espeak-ng does not run") and problem.endswith(": text only")
    narrator = build_narrator(settings, engines=[missing])
    narrator.close()
    assert narrator.status()["mode"] == "text only"
    assert narrator.status()["output"] == "none"


def test_an_unknown_voice_is_shown_in_the_status(tmp_path: Path) -> None:
    narrator = build_narrator(
        SpeechSettings(engine="espeak", output="wav", wav_dir=tmp_path, voice="xx-no-such-voice")
    )
    narrator.close()
    assert "no voice 'xx-no-such-voice'" in narrator.status()["problem"]


def test_without_piper_auto_says_why_and_speaks_with_espeak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "piper" else real(name, *a),
    )
    narrator = build_narrator(SpeechSettings(output="wav", wav_dir=tmp_path))
    narrator.close()
    status = narrator.status()
    assert status["engine"] == "espeak-ng"
    assert (
        status["problem"] == "piper is not installed (scripts/setup installs it): using espeak-ng"
    )


def test_auto_is_piper_here(tmp_path: Path) -> None:
    narrator = build_narrator(SpeechSettings(output="wav", wav_dir=tmp_path))
    try:
        assert narrator.status()["engine"] == "piper"
        assert "problem" not in narrator.status()
    finally:
        narrator.close()


def test_espeak_can_be_chosen(tmp_path: Path) -> None:
    narrator = build_narrator(SpeechSettings(engine="espeak", output="wav", wav_dir=tmp_path))
    narrator.close()
    assert narrator.status()["engine"] == "espeak-ng"
    assert "problem" not in narrator.status()


def test_a_missing_piper_voice_is_named(tmp_path: Path) -> None:
    reason = PiperEngine(tmp_path / "nobody.onnx").unavailable()
    assert reason is not None
    assert "not installed" in reason or "nobody.onnx not found" in reason
