"""Real synthesis into WAV files: Piper (auto), espeak-ng as a command and through pyttsx3."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from appliance.speech import SpeechSettings, build_narrator, style_for_mood
from appliance.speech.espeak_command import EspeakCommandEngine
from appliance.speech.pyttsx3_engine import Pyttsx3Engine
from appliance.speech.wav_clip import wav_duration_s
from tests.speech.fake_speech import AudioLog

SENTENCES = [
    "Once upon a time.",
    "A small fox lived at the edge of a very old forest, far from the river and the town.",
    "One night she heard a song.",
]


def wav_settings(tmp_path: Path, **changes: object) -> SpeechSettings:
    return SpeechSettings.model_validate({"output": "wav", "wav_dir": tmp_path / "wav", **changes})


def assert_wav(path: Path) -> float:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", path
    duration = wav_duration_s(data)
    assert duration > 0.2, path
    return duration


VOICE = {"auto": "piper", "espeak": "espeak-ng", "pyttsx3": "pyttsx3"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ["auto", "espeak"])
def test_sentences_become_wav_files_in_order(tmp_path: Path, engine: str) -> None:
    heard = AudioLog()
    narrator = build_narrator(wav_settings(tmp_path, engine=engine), on_audio=heard)
    try:
        assert narrator.status()["engine"] == VOICE[engine]
        narrator.say(SENTENCES[0], turn_id=1, mood=None)
        narrator.say(SENTENCES[1], turn_id=1, mood=None)
        narrator.say(SENTENCES[2], turn_id=3, mood=None)
        assert len(heard.wait_for(3)) == 3
    finally:
        narrator.close()
    files = sorted((tmp_path / "wav").iterdir())
    assert [f.name for f in files] == ["000001-t0001.wav", "000002-t0001.wav", "000003-t0003.wav"]
    short, long, medium = (assert_wav(f) for f in files)
    assert short < medium < long  # each file holds its own sentence
    assert narrator.status().get("problem") is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ["auto", "espeak", "pyttsx3"])
def test_fifteen_sentences_in_a_row_do_not_hang(tmp_path: Path, engine: str) -> None:
    heard = AudioLog()
    narrator = build_narrator(wav_settings(tmp_path, engine=engine), on_audio=heard)
    try:
        assert narrator.status()["engine"] == VOICE[engine]
        for n in range(15):
            narrator.say(
                f"This is sentence number {n + 1} of the story.", turn_id=n // 5, mood=None
            )
        done = heard.wait_for(15, timeout=45)
    finally:
        narrator.close()
    assert [d.seq for d in done] == list(range(1, 16))
    files = sorted((tmp_path / "wav").glob("*.wav"))
    assert len(files) == 15
    for f in files:
        assert_wav(f)
    assert narrator.status().get("problem") is None


@pytest.mark.timeout(60)
def test_pyttsx3_is_owned_by_one_thread_at_a_time(tmp_path: Path) -> None:
    """Narrators one after another each get pyttsx3 in their own synth thread; while one
    holds it, a second narrator in the same process falls back instead of sharing it."""
    for round_ in (1, 2):
        heard = AudioLog()
        first = build_narrator(
            wav_settings(tmp_path / str(round_), engine="pyttsx3"), on_audio=heard
        )
        try:
            first.say("The first voice speaks.", turn_id=1, mood=None)
            assert len(heard.wait_for(1)) == 1
            assert first.status()["engine"] == "pyttsx3"
            second = build_narrator(wav_settings(tmp_path / "other", engine="pyttsx3"))
            second.close()
            assert second.status()["engine"] == "espeak-ng"
            assert "already speaking" in second.status()["problem"]
        finally:
            first.close()


def test_a_pyttsx3_engine_refuses_a_second_thread() -> None:
    engine = Pyttsx3Engine()
    style = style_for_mood(SpeechSettings(), None)
    try:
        assert wav_duration_s(engine.synthesize("Hello there.", style) or b"") > 0.2
        errors: list[Exception] = []

        def other() -> None:
            try:
                engine.synthesize("Not from here.", style)
            except Exception as exc:
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(10)
        assert errors and "one" in str(errors[0])
    finally:
        engine.close()


@pytest.mark.parametrize("make_engine", [EspeakCommandEngine, Pyttsx3Engine])
def test_the_mood_changes_the_voice(make_engine: type[EspeakCommandEngine]) -> None:
    settings = SpeechSettings()
    text = "The door creaked open and the wind came in from the dark garden."
    engine = make_engine()
    try:
        happy = wav_duration_s(engine.synthesize(text, style_for_mood(settings, "happy")) or b"")
        sad = wav_duration_s(engine.synthesize(text, style_for_mood(settings, "sad")) or b"")
        plain = wav_duration_s(engine.synthesize(text, style_for_mood(settings, None)) or b"")
    finally:
        engine.close()
    assert happy < plain < sad
    assert sad / happy > 1.15


@pytest.mark.timeout(60)
def test_the_mood_reaches_the_narrated_audio(tmp_path: Path) -> None:
    heard = AudioLog()
    narrator = build_narrator(wav_settings(tmp_path), on_audio=heard)
    text = "The lantern flickered as the children climbed the stairs."
    try:
        narrator.say(text, turn_id=1, mood="happy")
        narrator.say(text, turn_id=1, mood="sad")
        happy, sad = heard.wait_for(2)
    finally:
        narrator.close()
    assert happy.duration_s < sad.duration_s


def test_unusual_text_is_spoken_as_text() -> None:
    engine = EspeakCommandEngine()
    style = style_for_mood(SpeechSettings(), None)
    try:
        for text in ("-- a sentence that starts like an option.", "Café, naïve, “quoted”.", "..."):
            assert wav_duration_s(engine.synthesize(text, style) or b"") > 0.0
    finally:
        engine.close()


def test_an_unknown_voice_is_reported() -> None:
    engine = EspeakCommandEngine(voice="xx-no-such-voice")
    assert "no voice 'xx-no-such-voice'" in (engine.unavailable() or "")
    assert EspeakCommandEngine(executable="/nonexistent/espeak-ng").unavailable()
    assert EspeakCommandEngine().unavailable() is None


FOUR_SENTENCES = ["One.", "Two and three.", "Four, five and six.", "Seven, eight, nine and ten."]


def four_durations(engine: Pyttsx3Engine, mood: str | None = None) -> list[float]:
    """Seconds of audio for each of FOUR_SENTENCES, spoken by ``engine`` in the mood's voice."""
    style = style_for_mood(SpeechSettings(), mood)
    return [wav_duration_s(engine.synthesize(text, style) or b"") for text in FOUR_SENTENCES]


def test_pyttsx3_settings_have_landed_whenever_pyttsx3_asks_if_libespeak_is_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pyttsx3's loop asks libespeak-ng whether it is busy, and if so leaves a flag that
    cancels a later sentence (CI, once, under load: a file with no audio). The library is
    busy exactly while settings handed to it are still queued. So every such question must
    come after a Synchronize that follows the last setting, from a fresh engine on."""
    import gc

    import pyttsx3
    import pyttsx3.drivers._espeak as libespeak

    gc.collect()
    assert "espeak" not in pyttsx3._activeEngines  # a fresh engine, as on the appliance
    calls: list[str] = []

    def spy(name: str) -> None:
        real = getattr(libespeak, name)

        def call(*args: object, **kwargs: object) -> object:
            calls.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(libespeak, name, call)

    for name in ("SetVoiceByName", "SetParameter", "Synchronize", "IsPlaying"):
        spy(name)
    engine = Pyttsx3Engine()
    try:
        durations = four_durations(engine, "happy")
    finally:
        engine.close()
    assert min(durations) > 0.2
    assert calls.count("IsPlaying") >= len(FOUR_SENTENCES)
    pending = False
    for name in calls:
        if name in ("SetVoiceByName", "SetParameter"):
            pending = True
        elif name == "Synchronize":
            pending = False
        else:
            assert not pending, calls


def test_pyttsx3_tries_again_when_a_sentence_comes_back_with_no_audio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The safety net under the test above: if pyttsx3 still writes a sentence's file with
    no audio in it (what CI saw), the sentence is synthesized again, not passed on silent."""
    import wave

    import pyttsx3.drivers.espeak as driver

    class FirstFileEmpty:
        emptied = 0

        def open(self, file: str, mode: str) -> wave.Wave_write:
            assert mode == "wb"
            writer = wave.open(file, "wb")  # noqa: SIM115 (pyttsx3 closes it)
            if not self.emptied:
                self.emptied += 1
                writer.writeframes = lambda _frames: None  # type: ignore[method-assign,assignment]
            return writer

    emptying = FirstFileEmpty()
    monkeypatch.setattr(driver, "wave", emptying)
    engine = Pyttsx3Engine()
    try:
        durations = four_durations(engine)
    finally:
        engine.close()
    assert emptying.emptied == 1
    assert min(durations) > 0.2
    assert durations == sorted(durations)  # each file holds its own sentence


@pytest.mark.timeout(30)
def test_a_pyttsx3_engine_still_held_elsewhere_is_reused_as_it_is() -> None:
    """pyttsx3.init hands back the engine it made before while anything holds it. Such an
    engine still has its last sentence and that sentence's (deleted) path: it must not be
    run again before the next sentence, which would speak the old one into nowhere and hang."""
    import pyttsx3

    style = style_for_mood(SpeechSettings(), None)
    first = Pyttsx3Engine()
    try:
        assert wav_duration_s(first.synthesize("The first voice speaks.", style) or b"") > 0.2
        held = pyttsx3.init("espeak")  # the same engine, kept alive past close()
    finally:
        first.close()
    second = Pyttsx3Engine()
    try:
        said = four_durations(second)
        assert pyttsx3.init("espeak") is held
    finally:
        second.close()
    assert min(said) > 0.2 and said == sorted(said)
