"""``moodtale bench speech``: how soon a sentence is heard, how fast the voice is, and the
silences a listener would hear that nobody meant.

Two passes over the same story sentences (a duck, a goose, a moon in a puddle: every
sentence length a turn has, long first sentences with commas included):

1. Each sentence is handed to an idle narrator, one at a time (within one turn, so none
   is split): the time from ``say`` to its first audio sample (p50, p95), and the voice's
   real-time factor (seconds of synthesis per second of speech, over all sentences).
2. The turns are handed over as a story streams them (a sentence every
   ``words / words_per_s`` seconds, the pace of the story model here) to a speaker that
   plays in real time: the largest gap between two sentences of a turn beyond the pause
   meant to be there, and the time to the first audio of each turn.

The speaker is the one part faked (this machine has none): it takes as long as the audio
lasts. The story model does not run alongside; ``moodtale bench latency`` measures them
together.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.bench.machine import machine_summary, package_version
from appliance.speech.auto import engine_candidates, pick_engine
from appliance.speech.engine import SpeechEngine
from appliance.speech.narrator import AudioDone, Narrator
from appliance.speech.output import PlaybackStarted, SentenceAudio
from appliance.speech.settings import SpeechSettings
from appliance.speech.style import SpeechStyle
from appliance.speech.wav_clip import wav_duration_s

TURNS = [
    [
        "That night Poppy ran to the flowerpot house in a fright: the moon had fallen into a "
        "big puddle at the Greenhouse, and Conker said they must get it out.",
        '"Let\'s get the moon out!" Poppy said.',
        "Conker nodded and fetched his bucket.",
    ],
    [
        "A grumpy goose at the Old Shed would not let anyone pass.",
        '"What are you doing here?" he honked.',
        "Poppy hid behind Conker's wing, and Conker took a deep breath.",
    ],
    [
        "Moss came along with a little ladder, in case the moon needed a step up.",
        '"Here you go," Moss said, smiling.',
        "Conker climbed the ladder and peered into the water.",
    ],
    [
        "At the Greenhouse, Conker looked up and laughed, because the moon was safe in the "
        "sky, and the one in the puddle was only its shining picture.",
        '"It was there all along!" said Poppy.',
        "They laughed until their tummies hurt.",
    ],
    [
        "They sat by the puddle and watched both moons until they yawned.",
        "Then they went home to the flowerpot house to sleep.",
        "Conker tucked his head under his wing and dreamed of stars.",
    ],
    [
        "One morning at the flowerpot house, Conker found a strange feather, blue as the sky, "
        "lying on the doorstep.",
        '"Whose can it be?" he wondered.',
        "Poppy sniffed it and sneezed.",
    ],
]

WARM_UP = "Once upon a time."

WORDS_PER_S = 10.0
"""About the story model's pace here (the 1.5B: ~16 tokens/s, ~1.3 tokens a word)."""


class TimedEngine:
    """The engine under test, with each synthesis timed."""

    def __init__(self, engine: SpeechEngine) -> None:
        self.engine = engine
        self.synth_s: list[float] = []
        self.audio_s: list[float] = []
        self.voices: list[str] = []

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def problem(self) -> str:
        return str(getattr(self.engine, "problem", "") or "")

    def warm(self) -> None:
        warm = getattr(self.engine, "warm", None)
        if callable(warm):
            warm()

    def unavailable(self) -> str | None:
        return self.engine.unavailable()

    def ready(self) -> None:
        """Wait for a voice that loads in the background (Piper) to be loaded."""
        piper = getattr(self.engine, "piper", None)
        if piper is not None:
            piper.ready(wait_s=60)

    def synthesize(self, text: str, style: SpeechStyle) -> bytes | None:
        began = time.perf_counter()
        wav = self.engine.synthesize(text, style)
        self.synth_s.append(time.perf_counter() - began)
        self.audio_s.append(wav_duration_s(wav) if wav else 0.0)
        self.voices.append(self.engine.name)
        return wav

    def close(self) -> None:
        self.engine.close()


@dataclass
class Played:
    turn_id: int | None
    began: float
    ended: float
    duration_s: float


@dataclass
class BenchSpeaker:
    """The speaker: plays each sentence for as long as it lasts (``realtime``), or at once."""

    realtime: bool
    played: list[Played] = field(default_factory=list)
    name: str = "bench"

    def play(self, audio: SentenceAudio, started: PlaybackStarted, stop: threading.Event) -> None:
        began = time.monotonic()
        started(None, began)
        if self.realtime:
            stop.wait(audio.duration_s)
        self.played.append(Played(audio.turn_id, began, time.monotonic(), audio.duration_s))

    def close(self) -> None:
        return None


class Heard:
    def __init__(self) -> None:
        self.done: list[AudioDone] = []
        self.arrived = threading.Condition()

    def __call__(self, done: AudioDone) -> None:
        with self.arrived:
            self.done.append(done)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        self.wait_until(lambda done: len(done) >= count, timeout)

    def wait_until(self, condition: Callable[[list[AudioDone]], bool], timeout: float) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: condition(self.done), timeout):
                raise TimeoutError(f"the sentences were not heard in {timeout:g} s")


def turn_heard(turn: int) -> Callable[[list[AudioDone]], bool]:
    return lambda done: any(d.turn_id == turn for d in done)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def one_by_one(
    engine: TimedEngine, settings: SpeechSettings, turns: list[list[str]]
) -> list[float]:
    """Pass 1: seconds from ``say`` to the first sample, each sentence to an idle narrator."""
    heard = Heard()
    narrator = Narrator(engine, BenchSpeaker(realtime=False), settings, on_audio=heard).start()
    engine.ready()  # the voice loads once, at boot: not part of any sentence's wait
    waits: list[float] = []
    try:
        # One turn, begun by a short sentence: the measured sentences are none of them a
        # turn's first, so none is split, and each is heard as one piece.
        narrator.say(WARM_UP, turn_id=1)
        heard.wait_for(1, timeout=120)
        for sentences in turns:
            for sentence in sentences:
                count = len(heard.done)
                handed = time.monotonic()
                narrator.say(sentence, turn_id=1)
                heard.wait_for(count + 1, timeout=120)
                done = heard.done[count]
                assert done.text == " ".join(sentence.split()), (done.text, sentence)
                waits.append(done.t_first_sample - handed)
    finally:
        narrator.close()
    return waits


def streamed(
    engine: TimedEngine, settings: SpeechSettings, turns: list[list[str]], words_per_s: float
) -> tuple[list[float], list[float]]:
    """Pass 2: each turn streamed at the story's pace to a real-time speaker. Returns the
    gaps inside turns beyond the pause in the audio, and each turn's first audio."""
    heard = Heard()
    speaker = BenchSpeaker(realtime=True)
    narrator = Narrator(engine, speaker, settings, on_audio=heard).start()
    engine.ready()
    first_audio: list[float] = []
    try:
        for turn, sentences in enumerate(turns, 1):
            handed = 0.0
            for sentence in sentences:
                time.sleep(len(sentence.split()) / words_per_s)  # the model writing it
                narrator.say(sentence, turn_id=turn)
                handed = handed or time.monotonic()
            heard.wait_until(turn_heard(turn), 120)
            first = next(d for d in heard.done if d.turn_id == turn)
            first_audio.append(first.t_first_sample - handed)
            while narrator.behind_s > 0.05:  # the next turn once this one is heard
                time.sleep(0.02)
            time.sleep(0.1)
    finally:
        narrator.close()
    gaps = [
        max(0.0, after.began - before.ended)
        for before, after in zip(speaker.played, speaker.played[1:], strict=False)
        if before.turn_id == after.turn_id
    ]
    return gaps, first_audio


def run_speech_bench(
    engine_name: str,
    turns: int = len(TURNS),
    words_per_s: float = WORDS_PER_S,
    speech: SpeechSettings | None = None,
) -> dict[str, Any]:
    """``speech``: the settings to measure with (the voice, its threads, the pauses); the
    engine is ``engine_name`` whatever they say."""
    told = TURNS[:turns]
    settings = (speech or SpeechSettings()).model_copy(update={"engine": engine_name})
    chosen, problem = pick_engine(settings, engine_candidates(settings))
    engine = TimedEngine(chosen)
    waits = one_by_one(engine, settings, told)
    rtf = sum(engine.synth_s) / max(sum(engine.audio_s), 1e-9)
    synth = list(engine.synth_s)
    voices = sorted(set(engine.voices))
    # A fresh engine for pass 2: pass 1's process is closed with its narrator.
    chosen, _ = pick_engine(settings, engine_candidates(settings))
    gaps, first_audio = streamed(TimedEngine(chosen), settings, told, words_per_s)
    sentences = sum(len(t) for t in told)
    return {
        "engine": "+".join(voices),
        "asked": engine_name,
        "problem": problem,
        "sentences": sentences,
        "first_audio_ms_p50": round(1000 * statistics.median(waits)),
        "first_audio_ms_p95": round(1000 * percentile(waits, 0.95)),
        "synth_ms_p50": round(1000 * statistics.median(synth)),
        "rtf": round(rtf, 3),
        "gap_ms_max": round(1000 * max(gaps, default=0.0)),
        "turn_first_audio_ms_p50": round(1000 * statistics.median(first_audio)),
        "turn_first_audio_ms_max": round(1000 * max(first_audio)),
        "turns": len(told),
        "words_per_s": words_per_s,
        "piper_threads": settings.piper_threads,
        "piper_tts": package_version("piper-tts"),
        **machine_summary(),
    }


def describe_speech_bench(result: dict[str, Any]) -> str:
    lines = [
        f"speech benchmark: {result['engine']} voice, {result['sentences']} sentences in "
        f"{result['turns']} turns, piper-tts {result['piper_tts']}, "
        f"{result['piper_threads']} Piper thread(s)",
        f"  machine: {result['cpu']}, {result['cores']} cores, {result['arch']}, "
        f"Python {result['python']}",
    ]
    if result["problem"]:
        lines.append(f"  asked for {result['asked']}: {result['problem']}")
    lines += [
        "  each sentence to an idle narrator, say() to first audio:",
        f"    p50 {result['first_audio_ms_p50']} ms, p95 {result['first_audio_ms_p95']} ms "
        f"(synthesis p50 {result['synth_ms_p50']} ms)",
        f"  real-time factor  {result['rtf']:.3f}",
        f"  turns streamed at {result['words_per_s']:g} words/s to a real-time speaker:",
        f"    first audio after the first sentence was handed over: p50 "
        f"{result['turn_first_audio_ms_p50']} ms, worst {result['turn_first_audio_ms_max']} ms",
        f"    largest gap inside a turn (beyond the pause meant): {result['gap_ms_max']} ms",
    ]
    return "\n".join(lines)
