"""Piper, the optional neural voice: runs only where the piper extra is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.speech import SpeechSettings, build_narrator, style_for_mood
from appliance.speech.piper_engine import PiperEngine
from appliance.speech.wav_clip import wav_duration_s
from tests.speech.fake_speech import AudioLog

pytest.importorskip("piper", reason="the piper extra is not installed")


@pytest.mark.timeout(120)
def test_piper_speaks_and_follows_the_mood() -> None:
    engine = PiperEngine()
    assert engine.unavailable() is None
    text = "The door creaked open and the wind came in from the dark garden."
    settings = SpeechSettings()
    try:
        happy = engine.synthesize(text, style_for_mood(settings, "happy")) or b""
        sad = engine.synthesize(text, style_for_mood(settings, "sad")) or b""
    finally:
        engine.close()
    assert happy[:4] == b"RIFF"
    assert 1.0 < wav_duration_s(happy) < wav_duration_s(sad)


@pytest.mark.timeout(120)
def test_a_piper_narrator_writes_sentences_in_order(tmp_path: Path) -> None:
    heard = AudioLog()
    settings = SpeechSettings(engine="piper", output="wav", wav_dir=tmp_path)
    narrator = build_narrator(settings, on_audio=heard)
    try:
        assert narrator.status()["engine"] == "piper"
        for n in range(3):
            narrator.say(f"Piper reads sentence number {n + 1}.", turn_id=7, mood=None)
        done = heard.wait_for(3, timeout=90)
    finally:
        narrator.close()
    assert [d.seq for d in done] == [1, 2, 3]
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == [
        "000001-t0007.wav",
        "000002-t0007.wav",
        "000003-t0007.wav",
    ]
