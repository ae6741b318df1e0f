"""The pipeline, with a slow fake voice injected through the constructor: ordering,
backpressure, clear and close. The speaker is the WAV directory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.speech import (
    Narrator,
    NoOutput,
    SilentEngine,
    SpeechEngineError,
    SpeechSettings,
    SpeechStyle,
    build_narrator,
)
from appliance.speech.wav_files import WavFileOutput
from tests.speech.fake_speech import AudioLog, SlowEngine, wait_until


def slow_narrator(
    tmp_path: Path, engine: SlowEngine, heard: AudioLog | None = None, **changes: object
) -> Narrator:
    settings = SpeechSettings.model_validate({"output": "wav", "wav_dir": tmp_path, **changes})
    return Narrator(engine, WavFileOutput(tmp_path), settings, on_audio=heard).start()


@pytest.mark.timeout(30)
def test_say_never_blocks_and_behind_s_grows_then_shrinks(tmp_path: Path) -> None:
    engine = SlowEngine(delay_s=0.25, audio_s=1.0)
    narrator = slow_narrator(tmp_path, engine)
    try:
        behind: list[float] = []
        began = time.monotonic()
        for n in range(8):
            narrator.say(f"Sentence {n} has a handful of words in it.", turn_id=1, mood=None)
            behind.append(narrator.behind_s)
        assert time.monotonic() - began < 0.1  # eight sentences, each 0.25 s to synthesize
        assert behind == sorted(behind) and behind[0] > 0
        assert behind[-1] > 8 * 2.0  # nine words at 160 wpm: over two seconds each

        shrinking = [narrator.behind_s]
        while shrinking[-1] > 0 and time.monotonic() - began < 10:
            time.sleep(0.1)
            shrinking.append(narrator.behind_s)
        assert shrinking[-1] == 0
        assert all(b >= a for a, b in zip(shrinking[1:], shrinking, strict=False))
        assert len(list(tmp_path.glob("*.wav"))) == 8
        assert len(engine.threads) == 1  # the engine lives in the synth thread only
    finally:
        engine.release.set()
        narrator.close()


@pytest.mark.timeout(30)
def test_wait_for_room_is_the_storytellers_brake(tmp_path: Path) -> None:
    engine = SlowEngine(delay_s=0.2)
    narrator = slow_narrator(tmp_path, engine, max_ahead_s=3.0)
    try:
        for n in range(4):
            narrator.say(f"Sentence {n} has a handful of words in it.")
        assert narrator.behind_s > narrator.max_ahead_s
        assert not narrator.wait_for_room(timeout=0.05)
        assert narrator.wait_for_room(timeout=10)
        assert narrator.behind_s <= 3.0
    finally:
        engine.release.set()
        narrator.close()


@pytest.mark.timeout(30)
def test_on_audio_fires_once_per_sentence_in_order(tmp_path: Path) -> None:
    heard = AudioLog()
    engine = SlowEngine(delay_s=0.05, audio_s=0.5)
    narrator = slow_narrator(tmp_path, engine, heard)
    try:
        for n in range(6):
            narrator.say(f"Sentence {n}.", turn_id=10 + n // 3, mood="happy")
        done = heard.wait_for(6)
        time.sleep(0.3)
        assert len(heard.done) == 6
    finally:
        narrator.close()
    assert [d.seq for d in done] == [1, 2, 3, 4, 5, 6]
    assert [d.turn_id for d in done] == [10, 10, 10, 11, 11, 11]
    assert [d.text for d in done] == [f"Sentence {n}." for n in range(6)]
    times = [d.t_first_sample for d in done]
    assert times == sorted(times) and len(set(times)) == 6
    for d in done:
        assert d.path is not None and d.path.is_file() and d.duration_s == pytest.approx(0.5)


@pytest.mark.timeout(30)
def test_clear_drops_the_pending_sentences(tmp_path: Path) -> None:
    heard = AudioLog()
    engine = SlowEngine(delay_s=0.3)
    narrator = slow_narrator(tmp_path, engine, heard)
    try:
        for n in range(8):
            narrator.say(f"Old story, sentence {n}.", turn_id=1, mood=None)
        heard.wait_for(1)
        narrator.clear()
        assert narrator.behind_s == 0
        narrator.say("A new story begins.", turn_id=2, mood=None)
        assert wait_until(lambda: any(d.turn_id == 2 for d in heard.done))
    finally:
        narrator.close()
    names = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert len(names) <= 3  # the first, at most one more in flight, and the new one
    assert names[-1].endswith("-t0002.wav")
    assert "A new story begins." in engine.texts
    assert not any(d.text.endswith("sentence 7.") for d in heard.done)


@pytest.mark.timeout(30)
def test_close_returns_quickly_with_work_pending(tmp_path: Path) -> None:
    engine = SlowEngine(delay_s=0.3)
    narrator = slow_narrator(tmp_path, engine)
    for n in range(20):
        narrator.say(f"Sentence {n}.")
    time.sleep(0.1)
    began = time.monotonic()
    narrator.close(timeout=2.0)
    assert time.monotonic() - began < 1.0
    narrator.say("After closing: ignored, and still does not block.")
    assert narrator.behind_s == 0
    assert len(list(tmp_path.glob("*.wav"))) < 20


@pytest.mark.timeout(30)
def test_close_returns_even_when_the_engine_is_stuck(tmp_path: Path) -> None:
    engine = SlowEngine(delay_s=60)
    narrator = slow_narrator(tmp_path, engine)
    try:
        narrator.say("This sentence never finishes synthesizing.")
        time.sleep(0.1)
        began = time.monotonic()
        narrator.close(timeout=1.0)
        assert time.monotonic() - began < 1.5
    finally:
        engine.release.set()


def test_silent_engine_writes_nothing_and_says_text_only(tmp_path: Path) -> None:
    narrator = build_narrator(
        SpeechSettings(engine="silent", output="wav", wav_dir=tmp_path / "wav")
    )
    try:
        narrator.say("Nobody hears this.", turn_id=1, mood=None)
        time.sleep(0.3)
        assert narrator.behind_s == 0
        status = narrator.status()
    finally:
        narrator.close()
    assert status["engine"] == "silent" and status["mode"] == "text only"
    assert not narrator.speaking
    assert list((tmp_path / "wav").glob("*")) == []


def test_output_none_is_text_only(tmp_path: Path) -> None:
    heard = AudioLog()
    narrator = build_narrator(SpeechSettings(output="none"), on_audio=heard)
    try:
        narrator.say("Read on the page only.", turn_id=1, mood=None)
        time.sleep(0.3)
        status = narrator.status()
    finally:
        narrator.close()
    assert status["output"] == "none" and status["mode"] == "text only"
    assert status["summary"] == "text only"
    assert "problem" not in status  # the user chose it: not a problem
    assert heard.done == []


def test_a_failing_sentence_is_skipped_and_reported(tmp_path: Path) -> None:
    class Stumbles(SlowEngine):
        def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
            if "stumble" in text:
                raise SpeechEngineError("could not say that")
            return super().synthesize(text, style)

    heard = AudioLog()
    narrator = slow_narrator(tmp_path, Stumbles(delay_s=0.01), heard)
    try:
        narrator.say("First.", turn_id=1)
        narrator.say("Here I stumble.", turn_id=1)
        assert wait_until(lambda: "could not say that" in narrator.status().get("problem", ""))
        narrator.say("Third.", turn_id=1)
        done = heard.wait_for(2)
        # The problem lasts while sentences fail: the next one spoken clears it.
        assert wait_until(lambda: "problem" not in narrator.status())
    finally:
        narrator.close()
    assert [d.text for d in done] == ["First.", "Third."]


def test_a_text_only_narrator_is_built_from_parts() -> None:
    narrator = Narrator(SilentEngine(), NoOutput())
    with narrator:
        narrator.say("Nothing to hear.")
        assert narrator.behind_s == 0
    assert narrator.status()["mode"] == "text only"
