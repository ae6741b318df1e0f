"""aplay played by a fake ``aplay`` first on PATH: this machine has no sound card."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from appliance.speech import AudioOutputError, SentenceAudio, SpeechSettings, build_narrator
from appliance.speech.aplay_output import AplayOutput
from appliance.speech.wav_clip import wav_duration_s
from tests.speech.fake_speech import AudioLog, fake_aplay, silent_wav, wait_until


@pytest.mark.timeout(60)
def test_sentences_play_in_order_and_a_busy_device_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "record"
    fake_aplay(tmp_path / "bin", record, busy_first=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    heard = AudioLog()
    narrator = build_narrator(
        SpeechSettings(output="aplay", aplay_device="plughw:1,0"), on_audio=heard
    )
    try:
        assert narrator.status()["output"] == "aplay"
        narrator.say("The owl called once.", turn_id=4, mood=None)
        narrator.say("Then the whole wood fell silent, waiting.", turn_id=4, mood=None)
        done = heard.wait_for(2)
        assert wait_until((record / "played-3.wav").exists)
    finally:
        narrator.close()
    calls = (record / "calls.log").read_text().splitlines()
    assert len(calls) == 3  # busy, then the two sentences
    for call in calls:
        assert call.startswith("-q -D plughw:1,0 ") and call.endswith(".wav")
    assert calls[0] == calls[1]  # the busy sentence was tried again
    first, second = (record / "played-2.wav").read_bytes(), (record / "played-3.wav").read_bytes()
    assert first[:4] == b"RIFF" and wav_duration_s(first) < wav_duration_s(second)
    assert [d.seq for d in done] == [1, 2] and [d.turn_id for d in done] == [4, 4]
    assert all(d.path is None for d in done)
    assert done[0].t_first_sample < done[1].t_first_sample
    assert "problem" not in narrator.status()


def test_a_device_that_stays_busy_is_given_up(tmp_path: Path) -> None:
    record = tmp_path / "record"
    aplay = fake_aplay(tmp_path / "bin", record, busy_first=100)
    output = AplayOutput(str(aplay), busy_retries=2, first_backoff_s=0.01)
    started: list[float] = []
    try:
        with pytest.raises(AudioOutputError, match="Device or resource busy"):
            output.play(
                SentenceAudio(1, 1, silent_wav(0.1), 0.1),
                lambda _path, t: started.append(t),
                threading.Event(),
            )
    finally:
        output.close()
    assert len((record / "calls.log").read_text().splitlines()) == 3
    assert started == []


@pytest.mark.timeout(30)
def test_close_cuts_off_the_sentence_playing(tmp_path: Path) -> None:
    record = tmp_path / "record"
    aplay = fake_aplay(tmp_path / "bin", record, play_s=30)
    output = AplayOutput(str(aplay))
    stop = threading.Event()
    started: list[float] = []
    player = threading.Thread(
        target=output.play,
        args=(SentenceAudio(1, 1, silent_wav(1.0), 1.0), lambda _p, t: started.append(t), stop),
    )
    player.start()
    assert wait_until(lambda: bool(started))
    pid = int((record / "last.pid").read_text())
    began = time.monotonic()
    stop.set()
    player.join(5)
    assert not player.is_alive() and time.monotonic() - began < 1.5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    output.close()


@pytest.mark.timeout(30)
def test_the_narrator_closes_promptly_while_a_sentence_plays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "record"
    fake_aplay(tmp_path / "bin", record, play_s=30)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    heard = AudioLog()
    narrator = build_narrator(SpeechSettings(), sound_device=lambda: True, on_audio=heard)
    narrator.say("A sentence that plays for a long time.", turn_id=1, mood=None)
    narrator.say("And one that waits behind it.", turn_id=1, mood=None)
    heard.wait_for(1)
    assert narrator.behind_s > 0
    began = time.monotonic()
    narrator.close()
    assert time.monotonic() - began < 1.5
    pid = int((record / "last.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
