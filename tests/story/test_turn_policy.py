"""The turn policy with the real storyteller and SmolLM2: shifts answered next, a pause
when the reader leaves, a recap when they return, no running ahead of the narrator."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.events import Emotions, Mood, StoryEvent
from appliance.story import Storyteller, open_store
from appliance.story.llama_backend import LlamaBackend
from appliance.story.llm import GenerationRequest, GenerationStats
from appliance.story.prompts import RESUME_INSTRUCTION, SHIFT_PREFIX, as_sentence
from appliance.story.store import TurnRecord
from appliance.story.turn_policy import ReadingPace, StoryLoop
from tests.story.conftest import smol_story
from tests.story.wrapped_llm import WrappedLLM


def mood(label: str, *, engaged: bool = True, shift: bool = False, confidence: float = 0.9) -> Mood:
    emotions = Emotions.from_mapping({label: confidence, "neutral": 1 - confidence})
    return Mood(
        emotions=emotions,
        dominant=label,
        confidence=confidence,
        faces=1 if engaged else 0,
        engaged=engaged,
        shift=shift,
        t=time.monotonic(),
    )


@dataclass
class Running:
    loop: StoryLoop
    teller: Storyteller
    events: list[tuple[float, StoryEvent]] = field(default_factory=list)
    behind: list[float] = field(default_factory=lambda: [0.0])

    def started_turns(self, after: float = 0.0) -> list[StoryEvent]:
        return [e for at, e in self.events if e.kind == "turn_started" and at > after]

    def wait(self, test: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not test():
            assert time.monotonic() < deadline, (self.loop.state, self.loop.reason)
            time.sleep(0.02)


@pytest.fixture
def running(tmp_path: Path, smollm: LlamaBackend) -> Iterator[Running]:
    yield from run_loop(tmp_path, smollm, sentences_per_turn=2)


@pytest.fixture
def running_glance(tmp_path: Path, smollm: LlamaBackend) -> Iterator[Running]:
    """A reader away for less than recap_after_s is not recapped."""
    yield from run_loop(tmp_path, smollm, sentences_per_turn=2, recap_after_s=60.0)


@pytest.fixture
def running_words(tmp_path: Path, smollm: LlamaBackend) -> Iterator[Running]:
    """The model writes each turn's first sentence, led by the beat's first words."""
    yield from run_loop(tmp_path, smollm, sentences_per_turn=2, lead_with_beat="words")


class SlowLLM(WrappedLLM):
    """The real model, each piece held back 0.1 s (a slower device), and when each
    request's pieces came: a turn cut short is seen to stop being generated."""

    def __init__(self, llm: LlamaBackend) -> None:
        super().__init__(llm)
        self.pieces_at: list[float] = []

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        for piece in self.llm.stream(request, cancel, stats):
            time.sleep(0.1)
            if request.purpose == "turn":
                self.pieces_at.append(time.monotonic())
            yield piece


@pytest.fixture
def running_long(tmp_path: Path, smollm: LlamaBackend) -> Iterator[Running]:
    """Turns of six sentences from a slower model: a cut one is seen to end early."""
    yield from run_loop(tmp_path, SlowLLM(smollm), sentences_per_turn=6)


def run_loop(
    tmp_path: Path, smollm: LlamaBackend | SlowLLM, sentences_per_turn: int, **changes: object
) -> Iterator[Running]:
    changes.setdefault("recap_after_s", 0.0)  # any absence is recapped, unless a test says
    store = open_store(tmp_path)
    holder: list[Running] = []

    def emit(event: StoryEvent) -> None:
        if holder:
            holder[0].events.append((time.monotonic(), event))

    settings = smol_story(sentences_per_turn=sentences_per_turn, reading_wpm=0, **changes)
    teller = Storyteller(settings, smollm, store, n_ctx=1024, emit=emit)
    run = Running(
        loop=StoryLoop(teller, settings, behind_s=lambda: 0.0, max_ahead_s=1.0), teller=teller
    )
    run.loop.behind_s = lambda: run.behind[0]
    holder.append(run)
    stop = threading.Event()
    thread = threading.Thread(target=run.loop.run, args=(stop,), daemon=True)
    thread.start()
    yield run
    stop.set()
    run.loop.stop_turn()
    thread.join(timeout=30)
    store.close()


def test_no_reader_no_story(running: Running) -> None:
    time.sleep(0.5)
    assert running.loop.state == "waiting for a reader"
    assert running.started_turns() == []
    running.loop.on_mood(mood("happy"))
    running.wait(lambda: len(running.started_turns()) >= 1)


def test_a_shift_is_answered_by_the_very_next_turn(running: Running) -> None:
    running.loop.on_mood(mood("happy"))
    running.wait(lambda: running.teller.turn_count >= 1)
    shifted_at = time.monotonic()
    cuts = running.loop.cuts
    running.loop.on_mood(mood("sad", shift=True))
    # A turn the loop had already begun for the old mood (its turn_started may come just
    # after the shift) is cut; the turn begun after the shift is the answer.
    cut = running.loop.cuts - cuts
    assert cut in (0, 1)
    # The steady Moods after it no longer carry the shift flag; the turn still answers it.
    running.loop.on_mood(mood("sad"))
    running.wait(lambda: len(running.started_turns(after=shifted_at)) >= 1 + cut)
    started = running.started_turns(after=shifted_at)
    if cut and started[0].mood is not None and started[0].mood.dominant == "happy":
        started = started[1:]
    answer = started[0]
    assert answer.mood is not None and answer.mood.dominant == "sad"
    running.wait(lambda: running.teller.turn_count > answer.turn_id)  # type: ignore[operator]
    record = running.teller.store.turns(running.teller.story.id)[answer.turn_id]  # type: ignore[index]
    assert record.mood_label == "sad"
    assert record.instruction.startswith(SHIFT_PREFIX) or SHIFT_PREFIX in record.instruction


def test_a_strong_shift_cuts_the_turn_being_written(running: Running) -> None:
    running.loop.on_mood(mood("happy"))
    running.wait(lambda: len(running.started_turns()) >= 2)  # mid-story, mid-turn
    running.loop.on_mood(mood("angry", shift=True, confidence=0.95))
    assert running.loop.cuts == 1
    # A weak shift does not cut.
    running.loop.on_mood(mood("surprise", shift=True, confidence=0.3))
    assert running.loop.cuts == 1


def test_a_strong_shift_ends_the_turn_being_written_then_answers(running_long: Running) -> None:
    run = running_long
    run.loop.on_mood(mood("happy"))

    def mid_turn() -> int | None:
        """The turn being written, once it has released a sentence and has more to go."""
        started = run.started_turns()
        if not started or started[-1].turn_id is None or started[-1].turn_id < 1:
            return None
        turn = started[-1].turn_id
        said = [e for _, e in run.events if e.kind == "sentence" and e.turn_id == turn]
        ended = [e for _, e in run.events if e.kind == "turn_finished" and e.turn_id == turn]
        return turn if len(said) == 1 and not ended else None

    run.wait(lambda: mid_turn() is not None, timeout=120)
    cut_turn = mid_turn()
    shifted_at = time.monotonic()
    run.loop.on_mood(mood("angry", shift=True, confidence=0.95))
    run.loop.on_mood(mood("angry"))

    def ended() -> bool:
        return any(
            at > shifted_at and e.kind == "turn_started" and e.turn_id != cut_turn
            for at, e in run.events
        )

    run.wait(ended, timeout=60)
    ended_after = time.monotonic() - shifted_at
    slow = run.teller.llm
    assert isinstance(slow, SlowLLM)
    next_turn_at = next(at for at, e in run.events if at > shifted_at and e.kind == "turn_started")
    # Generation of the cut turn stopped at once: at most the piece in hand when the
    # shift came (without the cut, its next sentences take a second or more).
    generated_after = [at for at in slow.pieces_at if shifted_at < at < next_turn_at]
    assert len(generated_after) <= 2, len(generated_after)
    after = [
        e
        for at, e in run.events
        if at > shifted_at and e.kind == "sentence" and e.turn_id == cut_turn
    ]
    # It ended at the sentence already out (one being finished at that instant may follow),
    # not after the four or five more it was writing, and quickly.
    assert len(after) <= 1, [e.text for e in after]
    assert ended_after < 10
    answer = next(e for at, e in run.events if at > shifted_at and e.kind == "turn_started")
    assert answer.mood is not None and answer.mood.dominant == "angry"


def leave_and_return(running: Running, away_s: float = 0.0) -> TurnRecord:
    """A turn, the reader away (for ``away_s``: the story waits), back: the turn told then."""
    running.loop.on_mood(mood("happy"))
    running.wait(lambda: running.teller.turn_count >= 1)
    running.loop.on_mood(mood("happy", engaged=False))
    running.wait(lambda: running.loop.state == "waiting for a reader")
    told = running.teller.turn_count
    time.sleep(away_s)
    assert running.teller.turn_count == told
    running.loop.on_mood(mood("happy"))
    running.wait(lambda: running.teller.turn_count > told)
    return running.teller.store.turns(running.teller.story.id)[told]


def test_reader_leaving_pauses_and_returning_resumes_with_a_recap(running: Running) -> None:
    record = leave_and_return(running, away_s=1.5)
    # The goal, told from the plan, reminds the reader where the story had got to.
    assert record.text.startswith(as_sentence(running.teller.plan.goal))
    assert RESUME_INSTRUCTION not in record.instruction


def test_a_glance_away_is_not_recapped(running_glance: Running) -> None:
    record = leave_and_return(running_glance)
    assert not record.text.startswith(as_sentence(running_glance.teller.plan.goal))
    assert not running_glance.teller.resuming


def test_with_the_model_writing_the_first_sentence_a_return_asks_it_for_the_recap(
    running_words: Running,
) -> None:
    record = leave_and_return(running_words)
    assert RESUME_INSTRUCTION in record.instruction


def test_the_story_waits_for_the_narrator(running: Running) -> None:
    running.behind[0] = 30.0  # the narrator is far behind
    running.loop.on_mood(mood("happy"))
    time.sleep(1.5)
    assert running.started_turns() == []
    running.behind[0] = 0.0
    running.wait(lambda: len(running.started_turns()) >= 1)


def test_a_shift_calls_off_a_fold_and_is_answered_first(running: Running) -> None:
    """Folding while the narrator is behind; a shift comes: the fold stops at once and
    the answer is told, even though the narrator is still behind."""
    folding = threading.Event()
    folds: list[bool] = []

    def slow_fold(turns_ahead: int = 2, cancel: threading.Event | None = None) -> bool:
        assert cancel is not None
        folding.set()
        folds.append(cancel.wait(30))  # a fold that would take long, unless called off
        return False

    running.teller.fold_ahead = slow_fold  # type: ignore[method-assign]
    running.loop.on_mood(mood("happy"))
    running.wait(lambda: len(running.started_turns()) >= 1)
    running.behind[0] = 30.0  # after this turn, the story waits (and folds meanwhile)
    running.wait(folding.is_set)
    told = len(running.started_turns())
    shifted_at = time.monotonic()
    running.loop.on_mood(mood("sad", shift=True))
    running.wait(lambda: len(running.started_turns(after=shifted_at)) >= 1, timeout=5)
    assert folds[0] is True  # called off, not finished
    assert len(running.started_turns()) == told + 1
    answer = running.started_turns(after=shifted_at)[0]
    assert answer.mood is not None and answer.mood.dominant == "sad"


def test_likely_shifts_are_the_moods_shown_lately_then_the_runner_ups(running: Running) -> None:
    loop = running.loop
    loop.on_mood(mood("sad"))
    loop.on_mood(mood("happy", shift=True))
    now = Mood(
        emotions=Emotions.from_mapping({"happy": 0.6, "surprise": 0.3, "neutral": 0.1}),
        dominant="happy",
        confidence=0.6,
        faces=1,
        engaged=True,
        shift=False,
        t=time.monotonic(),
    )
    assert loop.likely_shifts(now) == ["sad", "surprise"]


def test_answers_are_prepared_while_the_story_waits_and_used_on_a_shift(
    running_words: Running,
) -> None:
    """With the model writing each turn's first sentence (``lead_with_beat = "words"``):
    told from the plan, the beat needs nothing written ahead."""
    running = running_words
    running.loop.on_mood(mood("sad"))
    running.loop.on_mood(mood("happy", shift=True))
    running.wait(lambda: running.teller.turn_count >= 1)
    running.behind[0] = 30.0  # the narrator is behind: the story waits, and prepares
    running.wait(lambda: "sad" in running.teller.prepared, timeout=60)
    prepared = running.teller.prepared["sad"].sentence
    shifted_at = time.monotonic()
    running.loop.on_mood(mood("sad", shift=True))
    running.wait(lambda: any(e.kind == "sentence" for at, e in running.events if at > shifted_at))
    first = next(e for at, e in running.events if at > shifted_at and e.kind == "sentence")
    assert first.text == prepared
    assert running.teller.prepared_used == 1


def test_pause_and_resume_from_the_page(running: Running) -> None:
    running.loop.pause()
    running.loop.on_mood(mood("happy"))
    running.wait(lambda: running.loop.state == "paused")
    time.sleep(1.0)
    assert running.started_turns() == []
    running.loop.resume()
    running.wait(lambda: len(running.started_turns()) >= 1)


def test_reading_pace_counts_words() -> None:
    now = [100.0]
    pace = ReadingPace(wpm=120, clock=lambda: now[0])
    pace.add("one two three four")  # 2 s at 120 words per minute
    assert pace.behind_s() == pytest.approx(2.0)
    now[0] += 1.5
    assert pace.behind_s() == pytest.approx(0.5)
    now[0] += 5
    assert pace.behind_s() == 0.0
    assert ReadingPace(wpm=0).behind_s() == 0.0


class GuardFailingLLM(WrappedLLM):
    """The real model, its words run together with '#{}': every sentence is caught by the
    story guards as garbage, so every turn is given up. Keeps when each request began and
    ended."""

    def __init__(self, llm: LlamaBackend) -> None:
        super().__init__(llm)
        self.spans: list[tuple[float, float]] = []

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        began = time.monotonic()
        try:
            for piece in self.llm.stream(request, cancel, stats):
                yield piece.replace(" ", " #{} ")
        finally:
            if request.purpose == "turn":
                self.spans.append((began, time.monotonic()))


def test_turns_the_guards_keep_refusing_back_off_from_half_a_second_doubling(
    tmp_path: Path, smollm: LlamaBackend
) -> None:
    store = open_store(tmp_path)
    failing = GuardFailingLLM(smollm)
    settings = smol_story(sentences_per_turn=2, reading_wpm=0, attempts=1, prepared_answers=0)
    teller = Storyteller(settings, failing, store, n_ctx=1024)
    loop = StoryLoop(teller, settings, behind_s=lambda: 0.0, max_ahead_s=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        loop.on_mood(mood("happy"))
        deadline = time.monotonic() + 60
        while len(failing.spans) < 5:
            assert time.monotonic() < deadline, failing.spans
            time.sleep(0.05)
    finally:
        stop.set()
        loop.stop_turn()
        thread.join(timeout=30)
        store.close()
    assert teller.turn_count == 0 and loop.given_up >= 4
    waits = [b[0] - a[1] for a, b in itertools.pairwise(failing.spans[:5])]
    print("\nwaits between given-up turns:", [round(w, 2) for w in waits])
    for wait, expected in zip(waits, (0.5, 1.0, 2.0, 4.0), strict=True):
        assert expected * 0.9 <= wait <= expected + 1.5, waits


def test_reading_pace_returns_what_the_reader_never_began() -> None:
    now = [100.0]
    pace = ReadingPace(wpm=60, clock=lambda: now[0])  # a word a second
    pace.add("One two three.", turn_id=4)
    pace.add("Four five six.", turn_id=4)
    pace.add("Seven eight.", turn_id=5)
    now[0] += 3.5  # into the second sentence: it is read to its end
    assert pace.reset() == [(5, "Seven eight.")]
    assert pace.behind_s() == 0.0
    assert pace.reset() == []
