"""Speech that flows: the voice's own silence trimmed, a pause of the right length after
each sentence (leaning with the mood), a longer one between turns on a speaker, and a long
first sentence spoken in two parts so it starts sooner."""

from __future__ import annotations

import io
import threading
import time
import wave
from pathlib import Path

import numpy as np

from appliance.speech import SpeechSettings, SpeechStyle, style_for_mood
from appliance.speech.narrator import COMMA_PAUSE_S, Narrator, split_at_comma
from appliance.speech.output import PlaybackStarted, SentenceAudio
from appliance.speech.wav_clip import wav_duration_s
from appliance.speech.wav_files import WavFileOutput
from appliance.speech.wav_shape import MARGIN_S, leading_silence_s, shaped, trailing_silence_s
from tests.speech.fake_speech import AudioLog, silent_wav


def tone_wav(before_s: float, sound_s: float, after_s: float, rate: int = 22050) -> bytes:
    t = np.arange(round(sound_s * rate)) / rate
    sound = (8000 * np.sin(2 * np.pi * 220 * t)).astype("<i2")
    samples = np.concatenate(
        [np.zeros(round(before_s * rate), "<i2"), sound, np.zeros(round(after_s * rate), "<i2")]
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(samples.tobytes())
    return buffer.getvalue()


def test_silence_is_trimmed_and_the_pause_put_back() -> None:
    wav = tone_wav(0.33, 1.0, 0.4)
    out = shaped(wav, 0.3)
    assert leading_silence_s(out) <= MARGIN_S + 0.001
    assert abs(trailing_silence_s(out) - (0.3 + MARGIN_S)) < 0.002
    assert abs(wav_duration_s(out) - (1.0 + 0.3 + 2 * MARGIN_S)) < 0.002


def test_a_silent_or_foreign_clip_is_left_alone() -> None:
    silent = silent_wav(0.5)
    assert shaped(silent, 0.3) == silent
    assert shaped(b"not a wav", 0.3) == b"not a wav"


def test_the_pause_leans_with_the_mood() -> None:
    settings = SpeechSettings()
    pauses = {mood: style_for_mood(settings, mood).pause_s for mood in ("happy", None, "sad")}
    assert 0.25 <= pauses["happy"] < pauses[None] == 0.3 < pauses["sad"] <= 0.4
    assert style_for_mood(settings.model_copy(update={"follow_mood": False}), "sad").pause_s == 0.3


def test_a_long_first_sentence_splits_at_a_comma() -> None:
    long = "At the Greenhouse, Conker looked up and laughed, because the moon was safe in the sky."
    assert split_at_comma(long) == (
        "At the Greenhouse, Conker looked up and laughed,",
        "because the moon was safe in the sky.",
    )
    assert (
        split_at_comma("The moon was safe, and the one in the puddle was only its picture.") is None
    )
    assert split_at_comma(
        "That night Poppy ran home in a fright: the moon had fallen into a big puddle."
    ) == ("That night Poppy ran home in a fright:", "the moon had fallen into a big puddle.")
    # No comma leaves four words on each side: spoken whole.
    assert (
        split_at_comma(
            "Conker and Poppy ran all the way to the old shed by the big green pond, fast."
        )
        is None
    )


class ToneEngine:
    name = "tone"

    def unavailable(self) -> str | None:
        return None

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        return tone_wav(0.2, 0.05 * len(text.split()), 0.2)

    def close(self) -> None:
        return None


def test_only_a_turns_first_sentence_is_split(tmp_path: Path) -> None:
    heard = AudioLog()
    narrator = Narrator(ToneEngine(), WavFileOutput(tmp_path), on_audio=heard).start()
    long = "At the Greenhouse, Conker looked up and laughed, because the moon was safe in the sky."
    try:
        narrator.say(long, turn_id=1)
        narrator.say(long, turn_id=1)
        narrator.say(long, turn_id=2)
        done = heard.wait_for(5)
    finally:
        narrator.close()
    assert [d.text for d in done] == [
        "At the Greenhouse, Conker looked up and laughed,",
        "because the moon was safe in the sky.",
        long,
        "At the Greenhouse, Conker looked up and laughed,",
        "because the moon was safe in the sky.",
    ]
    first = (tmp_path / "000001-t0001.wav").read_bytes()
    whole = (tmp_path / "000003-t0001.wav").read_bytes()
    assert abs(trailing_silence_s(first) - (COMMA_PAUSE_S + MARGIN_S)) < 0.002
    assert abs(trailing_silence_s(whole) - (0.3 + MARGIN_S)) < 0.002


class ClockSpeaker:
    """A speaker that plays in real time and notes when each sentence began and ended."""

    name = "clock"
    realtime = True

    def __init__(self) -> None:
        self.played: list[tuple[int | None, float, float]] = []

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        began = time.monotonic()
        started(None, began)
        stop.wait(audio.duration_s)
        self.played.append((audio.turn_id, began, time.monotonic()))

    def close(self) -> None:
        return None


def test_a_new_turn_waits_the_turn_pause_on_a_speaker() -> None:
    speaker = ClockSpeaker()
    heard = AudioLog()
    settings = SpeechSettings(turn_pause_s=0.8)
    narrator = Narrator(ToneEngine(), speaker, settings, on_audio=heard).start()
    try:
        narrator.say("One two three.", turn_id=1)
        narrator.say("Four five six.", turn_id=1)
        narrator.say("Seven eight nine.", turn_id=2)
        heard.wait_for(3)
        deadline = time.monotonic() + 5
        while len(speaker.played) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        narrator.close()
    (_, _, end1), (_, begin2, end2), (_, begin3, _) = speaker.played
    # Within a turn the sentence pause is in the audio: the next one follows at once.
    assert begin2 - end1 < 0.1
    # Between turns, 0.8 s in all: the 0.3 s pause in the audio and 0.5 s more.
    assert 0.45 <= begin3 - end2 <= 0.65


def test_clear_returns_what_was_never_heard_and_finishes_the_sentence_begun() -> None:
    speaker = ClockSpeaker()
    heard = AudioLog()
    narrator = Narrator(ToneEngine(), speaker, SpeechSettings(), on_audio=heard).start()
    long = "At the Greenhouse, Conker looked up and laughed, because the moon was safe in the sky."
    try:
        narrator.say(long, turn_id=1)
        narrator.say("Poppy clapped her paws.", turn_id=1)
        narrator.say("Moss came running with a lantern.", turn_id=1)
        heard.wait_for(1)  # the first part of the long sentence is playing
        assert narrator.clear() == [
            (1, "Poppy clapped her paws."),
            (1, "Moss came running with a lantern."),
        ]
        done = heard.wait_for(2)
        time.sleep(0.5)
    finally:
        narrator.close()
    # The sentence begun is heard to its end; nothing after it.
    assert [d.text for d in done] == [
        "At the Greenhouse, Conker looked up and laughed,",
        "because the moon was safe in the sky.",
    ]
    assert len(heard.done) == 2


def test_files_are_not_held_back_by_the_turn_pause(tmp_path: Path) -> None:
    heard = AudioLog()
    narrator = Narrator(ToneEngine(), WavFileOutput(tmp_path), SpeechSettings(), on_audio=heard)
    narrator.start()
    try:
        narrator.say("One two three.", turn_id=1)
        narrator.say("Four five six.", turn_id=2)
        done = heard.wait_for(2)
    finally:
        narrator.close()
    # Written as soon as they are made: only a speaker waits between turns.
    assert done[1].t_first_sample - done[0].t_first_sample < 0.3


class NobodyListens:
    """The page as speaker, with nobody listening."""

    name = "page"
    realtime = True

    def __init__(self) -> None:
        self.listening = False

    def active(self) -> bool:
        return self.listening

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        started(None, time.monotonic())

    def close(self) -> None:
        return None


class CountingEngine(ToneEngine):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        self.texts.append(text)
        return super().synthesize(text, style)


def test_nothing_is_synthesized_while_nobody_listens() -> None:
    engine, page = CountingEngine(), NobodyListens()
    heard = AudioLog()
    narrator = Narrator(engine, page, SpeechSettings(), on_audio=heard).start()
    try:
        narrator.say("Nobody hears this.", turn_id=1)
        assert [narrator.speaking] == [False]
        time.sleep(0.5)
        assert engine.texts == []
        page.listening = True
        assert narrator.speaking
        narrator.say("Now someone does.", turn_id=1)
        heard.wait_for(1)
    finally:
        narrator.close()
    assert engine.texts == ["Now someone does."]


class SlowSecondPart(ToneEngine):
    """The second part of a split sentence takes a while to make (a long part, a Pi)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        if text.startswith("because"):
            self.release.wait(5)
        return super().synthesize(text, style)


def test_a_sentence_half_heard_is_finished_even_if_its_rest_is_not_ready() -> None:
    engine, speaker, heard = SlowSecondPart(), ClockSpeaker(), AudioLog()
    narrator = Narrator(engine, speaker, SpeechSettings(), on_audio=heard).start()
    long = "At the Greenhouse, Conker looked up and laughed, because the moon was safe in the sky."
    try:
        narrator.say(long, turn_id=1)
        heard.wait_for(1)
        deadline = time.monotonic() + 5
        while not speaker.played and time.monotonic() < deadline:
            time.sleep(0.02)  # the first part has been heard; the rest is still being made
        assert narrator.clear() == []  # nothing unheard: the sentence is finished
        engine.release.set()
        done = heard.wait_for(2)
    finally:
        engine.release.set()
        narrator.close()
    assert [d.text for d in done][-1] == "because the moon was safe in the sky."
