"""Piper, the default voice, with its real model (scripts/setup installs it), in a process
of its own: what it says, how the narrator shapes it, and what happens when it dies."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.speech import SpeechSettings, SpeechStyle, build_narrator, style_for_mood
from appliance.speech.engine import SpeechEngineError
from appliance.speech.espeak_command import EspeakCommandEngine
from appliance.speech.narrator import Narrator
from appliance.speech.piper_fallback import PiperWithFallback
from appliance.speech.piper_process import PiperEngine
from appliance.speech.wav_clip import wav_duration_s
from appliance.speech.wav_files import WavFileOutput
from appliance.speech.wav_shape import MARGIN_S, leading_silence_s, trailing_silence_s
from tests.speech.fake_speech import AudioLog, wait_until

TEXT = "The door creaked open and the wind came in from the dark garden."


def loudness(wav: bytes) -> float:
    import io
    import wave

    with wave.open(io.BytesIO(wav), "rb") as clip:
        samples = np.frombuffer(clip.readframes(clip.getnframes()), "<i2")
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def rate_of(wav: bytes) -> int:
    import io
    import wave

    with wave.open(io.BytesIO(wav), "rb") as clip:
        return clip.getframerate()


@pytest.mark.timeout(120)
def test_piper_speaks_the_words_at_the_voices_rate_and_follows_the_mood() -> None:
    engine = PiperEngine()
    assert engine.unavailable() is None
    settings = SpeechSettings()
    try:
        assert engine.ready(wait_s=60)
        happy = engine.synthesize(TEXT, style_for_mood(settings, "happy")) or b""
        sad = engine.synthesize(TEXT, style_for_mood(settings, "sad")) or b""
    finally:
        engine.close()
    assert happy[:4] == b"RIFF" and rate_of(happy) == 22050
    assert loudness(happy) > 500  # speech, not silence
    # 13 words at 150-200 words a minute: about 4-5 s; a sad reader hears it slower.
    assert 2.5 < wav_duration_s(happy) < wav_duration_s(sad) < 8.0


@pytest.mark.timeout(120)
def test_a_piper_narrator_writes_trimmed_sentences_with_pauses_in_order(tmp_path: Path) -> None:
    heard = AudioLog()
    settings = SpeechSettings(engine="piper", output="wav", wav_dir=tmp_path)
    narrator = build_narrator(settings, on_audio=heard)
    try:
        for n in range(3):
            narrator.say(f"Piper reads sentence number {n + 1}.", turn_id=7, mood="sad")
        done = heard.wait_for(3, timeout=90)
        assert narrator.status()["engine"] == "piper"
    finally:
        narrator.close()
    assert [d.seq for d in done] == [1, 2, 3]
    assert [d.voice for d in done] == ["piper"] * 3
    files = sorted(tmp_path.glob("*.wav"))
    assert [p.name for p in files] == ["000001-t0007.wav", "000002-t0007.wav", "000003-t0007.wav"]
    for path in files:
        wav = path.read_bytes()
        # The voice's own silence is gone; the sentence pause (a sad reader's: 0.39 s) follows.
        assert leading_silence_s(wav) <= MARGIN_S + 0.01
        assert 0.38 <= trailing_silence_s(wav) <= 0.39 + MARGIN_S + 0.01


def espeak() -> EspeakCommandEngine:
    return EspeakCommandEngine()


@pytest.mark.timeout(120)
def test_a_killed_piper_costs_no_sentence_and_comes_back(tmp_path: Path) -> None:
    piper = PiperEngine(backoff_s=(0.5,))
    voice = PiperWithFallback(piper, espeak())
    heard = AudioLog()
    narrator = Narrator(voice, WavFileOutput(tmp_path), SpeechSettings(), on_audio=heard).start()
    try:
        narrator.say("Conker found a feather by the pond.", turn_id=1)
        heard.wait_for(1, timeout=60)
        pid = piper.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # mid-turn
        narrator.say("Then he showed it to Poppy.", turn_id=1)
        done = heard.wait_for(2, timeout=30)
        # Spoken all the same, by espeak-ng, and the page says why.
        assert done[1].voice == "espeak-ng" and done[1].text == "Then he showed it to Poppy."
        status = narrator.status()
        assert "the Piper process stopped (exit code -9)" in status["problem"]
        assert status["problem"].endswith("using espeak-ng")
        # Started again after the backoff, in the background: the next sentences are Piper's.
        assert wait_until(lambda: piper.pid not in (None, pid), timeout=30)
        narrator.say("Poppy laughed and said it was lovely.", turn_id=1)
        done = heard.wait_for(3, timeout=30)
        assert done[2].voice == "piper"
        assert piper.restarts == 1
        assert "problem" not in narrator.status()
    finally:
        narrator.close()
    assert piper.pid is None  # closed with the narrator


@pytest.mark.timeout(60)
def test_a_hung_piper_is_killed_and_the_sentence_spoken_by_espeak(tmp_path: Path) -> None:
    hang = 'import sys, time; print(\'{"ready": true, "rate": 22050}\', flush=True); time.sleep(60)'
    piper = PiperEngine(
        command=[sys.executable, "-c", hang], backoff_s=(30.0,), sentence_timeout=lambda t: 0.5
    )
    voice = PiperWithFallback(piper, espeak())
    assert piper.ready(wait_s=20)
    hung = piper.pid
    wav = voice.synthesize("Nobody answers in there.", style())
    assert wav is not None and wav_duration_s(wav) > 0.5
    assert voice.name == "espeak-ng"
    assert "did not answer in time" in voice.problem and "trying again in 30 s" in voice.problem
    assert hung is not None and wait_until(lambda: not pid_alive(hung), timeout=5)
    # While it waits out the backoff, sentences go straight to espeak-ng.
    assert voice.synthesize("And again.", style()) is not None and voice.name == "espeak-ng"
    voice.close()


def style() -> SpeechStyle:
    return style_for_mood(SpeechSettings(), None)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(60)
def test_a_piper_that_cannot_start_backs_off_and_espeak_speaks() -> None:
    piper = PiperEngine(command=[sys.executable, "-c", "raise SystemExit(3)"], backoff_s=(0.2, 5.0))
    voice = PiperWithFallback(piper, espeak(), first_wait_s=10)
    assert voice.synthesize("Hello there, little duck.", style()) is not None
    assert voice.name == "espeak-ng"
    assert "Piper did not start" in voice.problem
    assert wait_until(lambda: "trying again in 5 s" in piper.problem, timeout=10)  # tried twice


@pytest.mark.timeout(120)
def test_a_piper_too_slow_for_the_device_is_given_up_with_the_reason() -> None:
    piper = PiperEngine()
    voice = PiperWithFallback(piper, espeak(), max_rtf=0.0001)
    try:
        for n in range(5):
            voice.synthesize(f"This is a sentence long enough to time, number {n + 1}.", style())
        assert voice.problem.startswith("Piper is too slow here (real-time factor")
        assert voice.problem.endswith("over 0.0001): using espeak-ng")
        assert piper.pid is None  # its process is stopped, its CPU given back
        voice.synthesize("Now espeak-ng speaks.", style())
        assert voice.name == "espeak-ng"
    finally:
        voice.close()


def test_piper_not_installed_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "piper" else real(name, *a),
    )
    assert PiperEngine().unavailable() == "piper is not installed (scripts/setup installs it)"


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


@pytest.mark.timeout(120)
def test_a_sentence_piper_refuses_costs_that_sentence_only() -> None:
    answer = '{"ready": true, "rate": 22050}'
    refuse = '{"error": "no phonemes"}'
    worker = (
        f"import sys; print({answer!r}, flush=True)\n"
        f"for line in sys.stdin: print({refuse!r}, flush=True)"
    )
    piper = PiperEngine(command=[sys.executable, "-c", worker], backoff_s=(30.0,))
    try:
        assert piper.ready(wait_s=20)
        pid = piper.pid
        with pytest.raises(SpeechEngineError, match="no phonemes"):
            piper.synthesize("Hmm.", style())
        assert piper.pid == pid and pid is not None and pid_alive(pid)  # not restarted
        assert piper.restarts == 0 and piper.problem == ""
    finally:
        piper.close()
    assert not pid_alive(pid)  # closed: the process is gone, not only forgotten


@pytest.mark.timeout(120)
def test_piper_threads_reach_the_voice() -> None:
    counts = {}
    for threads in (1, 2):
        piper = PiperEngine(threads=threads)
        try:
            assert piper.ready(wait_s=60)
            piper.synthesize("One little sentence to wake the threads.", style())
            assert piper.pid is not None
            counts[threads] = threads_of(piper.pid)
        finally:
            piper.close()
    assert counts[2] > counts[1], counts  # onnxruntime's pool grew by the thread asked for


def test_a_loader_that_talks_nonsense_is_not_left_running() -> None:
    marker = "moodtale-garbage-loader"
    worker = f"import time; print('not json', flush=True); time.sleep(60)  # {marker}"
    piper = PiperEngine(command=[sys.executable, "-c", worker], backoff_s=(30.0,))
    try:
        assert not piper.ready(wait_s=10)
        assert "answered garbage" in piper.problem
    finally:
        piper.close()

    def loaders() -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and marker in (entry / "cmdline").read_text():
                    state = (entry / "stat").read_text().split()[2]
                    if state != "Z":
                        found.append(entry.name)
            except OSError:
                continue
        return found

    assert wait_until(lambda: loaders() == [], timeout=5), loaders()
