from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from appliance.commands.story import mood_for
from appliance.events import StoryEvent
from appliance.story.azure_backend import AzureStoryLLM
from appliance.story.backends import StoryBackends
from appliance.story.llama_backend import LlamaBackend
from appliance.story.llm import (
    BackendError,
    ChatMessage,
    GenerationRequest,
    GenerationStats,
    StoryLLM,
)
from appliance.story.prompts import (
    SHIFT_PREFIX,
    TONES,
    as_sentence,
    instruction_for,
)
from appliance.story.settings import StorySettings
from appliance.story.store import StoryStore
from appliance.story.storyteller import Storyteller, TurnControl, heard_and_not, shift_to
from appliance.story.whole_story import RepeatCheck
from tests.fake_azure import FakeAzure
from tests.story.conftest import azure_settings, smol_llama, smol_story
from tests.story.wrapped_llm import WrappedLLM


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoryStore]:
    store = StoryStore(tmp_path / "stories.sqlite3")
    yield store
    store.close()


def teller(
    smollm: LlamaBackend, store: StoryStore, settings: StorySettings | None = None
) -> tuple[Storyteller, list[StoryEvent]]:
    events: list[StoryEvent] = []
    settings = settings or smol_story()
    backends = StoryBackends(settings, smollm, None)
    return (
        Storyteller(settings, backends, store, n_ctx=settings.llama.n_ctx, emit=events.append),
        events,
    )


def test_a_turn_streams_whole_sentences_and_is_stored(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    storyteller, events = teller(smollm, store)
    finished = storyteller.next_turn(mood_for("happy", None))
    assert finished is not None
    kinds = [e.kind for e in events if e.kind != "status"]
    assert kinds[0] == "turn_started" and kinds[-1] == "turn_finished"
    assert {"token", "sentence"} <= set(kinds)
    tokens = "".join(e.text for e in events if e.kind == "token").strip()
    sentences = [e.text for e in events if e.kind == "sentence"]
    assert tokens == " ".join(sentences) == finished.record.text
    assert all(s.rstrip("\"'”’)").endswith((".", "!", "?", "…")) for s in sentences)
    assert 1 <= len(sentences) <= storyteller.settings.sentences_per_turn
    (stored,) = store.turns(storyteller.story.id)
    assert stored.text == finished.record.text
    assert stored.mood_label == "happy"
    assert stored.backend == "local smollm2-135m-instruct"
    assert stored.ttft_ms > 0 and stored.tokens > 0


def test_the_mood_changes_the_instruction(smollm: LlamaBackend, store: StoryStore) -> None:
    storyteller, _ = teller(smollm, store)
    plan = storyteller.plan
    storyteller.next_turn(mood_for("happy", None))
    storyteller.next_turn(mood_for("neutral", "happy"))
    storyteller.next_turn(mood_for("happy", "neutral"))
    storyteller.next_turn(mood_for("away", "happy"))
    setup, step, funny, away = store.turns(storyteller.story.id)
    assert setup.beat["kind"] == "setup" and setup.instruction.startswith("Begin the story: ")
    assert step.beat["step"] == 1 and plan.steps[1].text in step.instruction
    # A smile: the plan's funny moment, said from the turn's first words.
    assert funny.beat["kind"] == "funny" and funny.beat["text"] == plan.funny[0]
    assert SHIFT_PREFIX + TONES["happy"] in funny.instruction
    assert funny.text.lower().startswith(" ".join(plan.funny[0].split()[:3]).lower())
    # Looking away: a twist the plan allows, once the plot has moved on a step.
    assert away.mood_label == "away" and away.beat["step"] == 2


def test_cut_ends_the_turn_at_the_next_sentence(smollm: LlamaBackend, store: StoryStore) -> None:
    storyteller, events = teller(smollm, store)
    control = TurnControl()
    control.cut.set()
    finished = storyteller.next_turn(mood_for("happy", None), control)
    assert finished is not None
    assert len([e for e in events if e.kind == "sentence"]) == 1


def test_abort_keeps_nothing(smollm: LlamaBackend, store: StoryStore) -> None:
    storyteller, events = teller(smollm, store)
    control = TurnControl()
    control.abort.set()
    assert storyteller.next_turn(mood_for("happy", None), control) is None
    assert store.turns(storyteller.story.id) == []
    assert not any(e.kind == "turn_finished" for e in events)


def test_hurry_before_any_sentence_drops_the_turn(smollm: LlamaBackend, store: StoryStore) -> None:
    storyteller, events = teller(smollm, store)
    control = TurnControl()
    control.hurry.set()
    assert storyteller.next_turn(mood_for("happy", None), control) is None
    assert store.turns(storyteller.story.id) == []
    assert not any(e.kind in ("sentence", "turn_finished") for e in events)


def test_hurry_after_a_sentence_ends_the_turn_there(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    control = TurnControl()
    events: list[StoryEvent] = []

    def emit(event: StoryEvent) -> None:
        events.append(event)
        if event.kind == "sentence":
            control.hurry.set()  # a strong shift, just after the first sentence

    settings = smol_story(sentences_per_turn=4)
    backends = StoryBackends(settings, smollm, None)
    storyteller = Storyteller(settings, backends, store, n_ctx=settings.llama.n_ctx, emit=emit)
    finished = storyteller.next_turn(mood_for("happy", None), control)
    assert finished is not None
    sentences = [e.text for e in events if e.kind == "sentence"]
    assert len(sentences) == 1
    assert finished.record.text == sentences[0]


def test_a_turn_told_again_gets_new_seeds(smollm: LlamaBackend, store: StoryStore) -> None:
    """A dropped or given-up turn told again must not replay the text it threw away."""
    control = TurnControl()

    def emit(event: StoryEvent) -> None:
        if event.kind == "sentence":
            control.abort.set()  # dropped after one try

    settings = smol_story()
    storyteller = Storyteller(
        settings, StoryBackends(settings, smollm, None), store, n_ctx=1024, emit=emit
    )
    instruction = instruction_for(mood_for("happy", None), settings, storyteller.plan)
    first_seed = storyteller.request_for(instruction).seed
    assert storyteller.next_turn(mood_for("happy", None), control) is None
    again = storyteller.request_for(instruction).seed
    assert first_seed == settings.llama.seed and again != first_seed


def test_the_story_resumes_after_a_restart(smollm: LlamaBackend, tmp_path: Path) -> None:
    path = tmp_path / "stories.sqlite3"
    store = StoryStore(path)
    first, _ = teller(smollm, store)
    first.next_turn(mood_for("happy", None))
    first.next_turn(mood_for("happy", "happy"))
    story_id = first.story.id
    plan = first.plan
    store.close()
    reopened = StoryStore(path)
    second, _ = teller(smollm, reopened)
    assert second.story.id == story_id
    assert second.turn_count == 2
    # The same plan, at the same place: the cast, the goal and the next step.
    assert second.plan == plan and plan.turns_told == 2
    finished = second.next_turn(mood_for("neutral", None))
    assert finished is not None and finished.record.idx == 2
    # The recap: the goal, told from the plan, then the next beat.
    recap = f"{as_sentence(plan.goal)} {as_sentence(plan.steps[plan.cursor].text)}"
    assert finished.record.text.startswith(recap)
    assert finished.record.beat["step"] == plan.cursor
    reopened.close()


def test_a_new_story_starts_over(smollm: LlamaBackend, store: StoryStore) -> None:
    storyteller, _ = teller(smollm, store)
    storyteller.next_turn(mood_for("happy", None))
    old = storyteller.story.id
    storyteller.new_story()
    assert storyteller.story.id != old and storyteller.turn_count == 0
    finished = storyteller.next_turn(mood_for("happy", None))
    assert finished is not None and finished.record.idx == 0
    assert finished.record.instruction.startswith("Begin the story: ")


def test_sixty_turns_never_overflow_the_window(smollm: LlamaBackend, store: StoryStore) -> None:
    """The prompt stays within n_ctx with room for the reply, folding old turns in large
    steps, and the summary stays short."""
    settings = smol_story(
        llama=smol_llama(n_ctx=1024), keep_recent_turns=4, summary_max_words=50, episode_turns=60
    )
    storyteller, events = teller(smollm, store, settings)
    moods = ["happy", "sad", "fear", "surprise", "neutral", "angry", "away"]
    prompt_sizes = []
    folds_seen = 0
    turns_made = 0
    summaries = 0
    for n in range(60):
        before = storyteller.context.folded_upto
        finished = storyteller.next_turn(mood_for(moods[n % 7], moods[(n - 1) % 7]))
        if storyteller.context.folded_upto != before:
            folds_seen += 1
            # One large step: everything but the kept turns went at once.
            assert len(storyteller.context.recent) <= settings.keep_recent_turns + 1
        if finished is not None:
            turns_made += 1
            prompt_sizes.append(finished.prompt_tokens)
        summary_words = len(storyteller.context.summary.split())
        assert summary_words <= settings.summary_max_words
        summaries += bool(storyteller.context.summary)
    assert turns_made >= 55
    assert max(prompt_sizes) + settings.llama.max_tokens <= settings.llama.n_ctx
    assert 1 <= folds_seen <= 20
    assert summaries  # folds happened within episodes, not only at their ends
    story = store.story(storyteller.story.id)
    assert story is not None and story.summary == storyteller.context.summary
    assert any("folded" in e.status.get("message", "") for e in events if e.kind == "status")


def test_folding_ahead_keeps_the_fold_out_of_the_turns(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    """Folded while idle, the story never makes a waiting reader sit through a fold."""
    events: list[StoryEvent] = []
    settings = smol_story(keep_recent_turns=2, episode_turns=60)
    storyteller = Storyteller(
        settings, StoryBackends(settings, smollm, None), store, n_ctx=1024, emit=events.append
    )
    folds_ahead = 0
    summaries = 0
    for turn in range(16):
        folds_ahead += storyteller.fold_ahead()
        before = len(events)
        storyteller.next_turn(mood_for("happy" if turn % 2 else "sad", None))
        folded_in_turn = [
            e for e in events[before:] if e.kind == "status" and "folded" in e.status["message"]
        ]
        assert folded_in_turn == [], f"turn {turn} had to fold"
        summaries += bool(storyteller.context.summary)
    assert folds_ahead >= 1
    assert summaries


def test_a_fold_called_off_by_a_shift_changes_nothing(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    settings = smol_story(keep_recent_turns=2, episode_turns=60)
    storyteller, events = teller(smollm, store, settings)
    llm = CancellingLLM(StoryBackends(settings, smollm, None))
    storyteller.llm = llm
    room = (settings.llama.max_tokens + 16) * 2
    for turn in range(30):
        storyteller.next_turn(mood_for("happy" if turn % 2 else "sad", None))
        if not storyteller.context.fits(llm, storyteller.context.instructions()[-1], room):
            break
    else:
        pytest.fail("the window never filled")
    told = storyteller.turn_count
    assert storyteller.fold_ahead(cancel=threading.Event()) is False
    assert llm.summaries == 1
    assert storyteller.context.folded_upto == 0 and storyteller.context.summary == ""
    stored = store.story(storyteller.story.id)
    assert stored is not None and stored.folded_upto == 0 and stored.summary == ""
    assert not any("folded" in e.status.get("message", "") for e in events if e.kind == "status")
    # Not called off, the same fold goes through and the story goes on from it.
    storyteller.llm = StoryBackends(settings, smollm, None)
    assert storyteller.fold_ahead(cancel=threading.Event()) is True
    assert storyteller.context.folded_upto > 0 and storyteller.context.summary
    assert storyteller.next_turn(mood_for("happy", None)) is not None
    assert storyteller.turn_count == told + 1


class RecordingLLM(WrappedLLM):
    """The real model, with every request it was sent kept for the test to read."""

    def __init__(self, llm: StoryLLM) -> None:
        super().__init__(llm)
        self.requests: list[GenerationRequest] = []

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        self.requests.append(request)
        return self.llm.stream(request, cancel, stats)


class CancellingLLM(RecordingLLM):
    """The real model; a summary request sets ``cancel`` as it starts (a shift came)."""

    @property
    def summaries(self) -> int:
        return sum(request.purpose == "summary" for request in self.requests)

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        if request.purpose == "summary":
            cancel.set()
        return super().stream(request, cancel, stats)


def test_an_urgent_turn_pushes_hard_from_its_first_try(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    settings = smol_story()
    recording = RecordingLLM(smollm)
    storyteller = Storyteller(settings, recording, store, n_ctx=1024)
    storyteller.next_turn(mood_for("happy", None))
    storyteller.next_turn(mood_for("sad", "happy"), TurnControl(urgent=True))
    calm, urgent = recording.requests[0], recording.requests[-1]
    assert calm.no_repeat_ngram == settings.llama.no_repeat_ngram
    assert urgent.no_repeat_ngram is not None and calm.no_repeat_ngram is not None
    assert urgent.no_repeat_ngram < calm.no_repeat_ngram


WORDS = smol_story(lead_with_beat="words")
"""The model writes each turn's first sentence (led by the beat's first words)."""


def test_an_answer_prepared_ahead_is_shown_at_once(smollm: LlamaBackend, store: StoryStore) -> None:
    storyteller, events = teller(smollm, store, WORDS)
    storyteller.next_turn(mood_for("happy", None))
    storyteller.next_turn(mood_for("happy", "happy"))
    assert storyteller.prepare(["sad", "fear"], threading.Event()) == 2
    sad = storyteller.prepared["sad"].sentence
    before = len(events)
    finished = storyteller.next_turn(shift_to("sad"))
    assert finished is not None
    assert storyteller.prepared_used == 1
    assert finished.record.text.startswith(sad)
    assert finished.record.mood_label == "sad"
    # The prepared sentence is the turn's first, released before the model wrote anything.
    sentences = [e.text for e in events[before:] if e.kind == "sentence"]
    assert sentences[0] == sad
    assert storyteller.prepared == {}  # the story moved on: the others are void


def test_a_prepared_answer_is_not_used_once_the_story_moved_on(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    storyteller, _events = teller(smollm, store, WORDS)
    storyteller.next_turn(mood_for("happy", None))
    assert storyteller.prepare(["sad"], threading.Event()) == 1
    storyteller.next_turn(mood_for("happy", "happy"))  # a turn came first
    storyteller.next_turn(shift_to("sad"))
    assert storyteller.prepared_used == 0


def test_preparing_stops_when_called_off(smollm: LlamaBackend, store: StoryStore) -> None:
    storyteller, events = teller(smollm, store)
    storyteller.next_turn(mood_for("happy", None))
    told = len(events)
    cancel = threading.Event()
    cancel.set()
    assert storyteller.prepare(["sad", "fear"], cancel) == 0
    assert len(events) == told  # nothing shown, nothing stored
    assert len(store.turns(storyteller.story.id)) == 1


def test_an_episode_ends_and_the_next_keeps_the_hero(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    settings = smol_story(episode_turns=5)
    storyteller, events = teller(smollm, store, settings)
    first = storyteller.plan
    beats = []
    for _ in range(6):
        finished = storyteller.next_turn(mood_for("neutral", None))
        assert finished is not None
        beats.append(finished.record.beat)
    # Five turns: the setup, two steps, and (what did not fit skipped) climax and ending.
    assert [b["kind"] for b in beats[:5]] == ["setup", "go", "trouble", "climax", "ending"]
    assert {b["episode"] for b in beats[:5]} == {1}
    assert beats[5]["kind"] == "setup" and beats[5]["episode"] == 2
    second = storyteller.plan
    assert second.episode == 2 and second.hero == first.hero and second.world == first.world
    assert second.shape != first.shape and second.turns_told == 1
    ended = [e for e in events if e.kind == "turn_finished" and e.status.get("beat") == "ending"]
    assert len(ended) == 1
    assert any(e.status.get("message") == "episode 1 ended" for e in events)
    # The new episode has a context of its own; how the last one ended is in the prompt.
    assert storyteller.context.folded_upto == 5 and len(storyteller.context.recent) == 1
    system = storyteller.context.messages("Next.")[0].content
    assert "Told before: " in system and second.goal in system
    # And a restart finds episode 2 where it was.
    again, _ = teller(smollm, store, settings)
    assert again.plan == second and again.context.folded_upto == 5


class RenamingLLM(WrappedLLM):
    """The real model, except that every summary it writes turns the hero into a fish."""

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        if request.purpose == "summary":
            return iter([f"The fish {self.hero} found a key. Then everyone went home."])
        return self.llm.stream(request, cancel, stats)

    hero = ""


def test_a_fold_keeps_the_plan_and_never_renames_the_hero(
    smollm: LlamaBackend, store: StoryStore
) -> None:
    settings = smol_story(llama=smol_llama(n_ctx=768), keep_recent_turns=2, episode_turns=60)
    storyteller, _events = teller(smollm, store, settings)
    renaming = RenamingLLM(StoryBackends(settings, smollm, None))
    renaming.hero = storyteller.plan.hero.name
    storyteller.llm = renaming
    for turn in range(30):
        storyteller.next_turn(mood_for("happy" if turn % 2 else "neutral", None))
        if storyteller.context.summary:
            break
    else:
        pytest.fail("the window never filled")
    summary = storyteller.context.summary
    # The model's summary was refused: its stand-in is the folded turns' first sentences.
    assert summary and "fish" not in summary
    folded = " ".join(t.text for t in store.turns(storyteller.story.id))
    assert set(summary.split()) <= set(folded.split())
    # The plan's facts stay in the prompt whatever the summary says.
    system = storyteller.context.messages("Next.")[0].content
    plan = storyteller.plan
    assert plan.goal in system and all(f"{c.name} is a {c.kind}" in system for c in plan.cast)


def test_a_turn_begins_with_its_beat_told_at_once(smollm: LlamaBackend, store: StoryStore) -> None:
    """The beat, told from the plan, is the turn's first sentence: shown before the model
    writes a word of its own, which then goes on from it (at least a few tokens)."""
    storyteller, events = teller(smollm, store)
    storyteller.next_turn(mood_for("neutral", None))
    instruction = storyteller._instruction(mood_for("sad", "neutral"))
    assert instruction.given == as_sentence(instruction.beat.text)
    before = len(events)
    finished = storyteller.next_turn(mood_for("sad", "neutral"))
    assert finished is not None
    sentences = [e for e in events[before:] if e.kind == "sentence"]
    assert sentences[0].text == instruction.given
    assert finished.record.text.startswith(instruction.given)
    assert finished.first_sentence_s <= finished.ttft_s  # before the model's first token
    assert finished.record.tokens >= 8  # the model added to it


def test_with_azure_the_model_writes_the_beat_itself(
    fake_azure: FakeAzure, store: StoryStore
) -> None:
    """A backend that cannot be led (Azure) gets the beat as its instruction and writes
    the whole turn: nothing is told twice."""
    settings = smol_story()
    backends = StoryBackends(settings, None, AzureStoryLLM(azure_settings(fake_azure)))
    storyteller = Storyteller(settings, backends, store, n_ctx=settings.llama.n_ctx)
    try:
        finished = storyteller.next_turn(mood_for("happy", None))
        assert finished is not None and finished.record.backend == "azure story-gpt"
        given = storyteller.context.turns[0].instruction
        assert finished.record.text.startswith("The little fox found a warm lantern")
        assert "Begin the story" in given
    finally:
        backends.close()


class ScriptedLLM:
    """A local model that writes what it is told to: the prefill, then ``replies`` in turn
    (a reply of None breaks the stream, as a crash would). Keeps every request."""

    name = "local scripted"
    kind: Literal["local", "azure"] = "local"

    def __init__(self, *replies: str | None, fail_after: int | None = None) -> None:
        self.replies = list(replies)
        self.fail_after = fail_after
        self.requests: list[GenerationRequest] = []

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else " Pip smiled."
        if request.prefill:
            yield request.prefill
        stats.ttft_s = stats.ttft_s or 0.01
        for index, piece in enumerate(WORDS_OF.findall(reply or "")):
            if self.fail_after is not None and index == self.fail_after:
                raise BackendError(self.name, "crashed", broken=True)
            yield piece

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return sum(len(m.content.split()) * 2 for m in messages)


WORDS_OF = re.compile(r"\s*\S+")


def scripted(store: StoryStore, llm: ScriptedLLM, **changes: object) -> Storyteller:
    settings = smol_story(**changes)
    return Storyteller(settings, llm, store, n_ctx=settings.llama.n_ctx)


def test_the_request_leads_with_the_beat_and_holds_the_model_to_its_own_words(
    store: StoryStore,
) -> None:
    llm = ScriptedLLM()
    storyteller = scripted(store, llm)
    for label in ("neutral", "happy", "sad", "fear"):
        storyteller.next_turn(mood_for(label, None))
    instruction = storyteller._instruction(mood_for("neutral", None))
    first = storyteller.request_for(instruction, 0)
    assert first.prefill == instruction.given and first.min_tokens == 8
    story = storyteller.story_so_far()
    assert first.avoid_sentence_openings == tuple(story[-3:])
    retry = storyteller.request_for(instruction, 1)
    assert retry.prefill == instruction.opening and retry.min_tokens == 0
    # Led by the whole beat, nothing is written ahead for a shift.
    assert storyteller.prepare(["sad"], threading.Event()) == 0 and not storyteller.prepared


def test_a_model_that_fails_after_its_own_sentence_went_out_loses_the_turn(
    store: StoryStore,
) -> None:
    llm = ScriptedLLM(" Pip ran to the gate. Then he", fail_after=6)
    storyteller = scripted(store, llm, attempts=1)
    assert storyteller.next_turn(mood_for("neutral", None)) is None
    assert store.turns(storyteller.story.id) == []


def test_a_motif_or_a_copy_of_the_last_episode_ends_the_turn_but_goal_words_are_free(
    store: StoryStore,
) -> None:
    llm = ScriptedLLM()
    storyteller = scripted(store, llm)
    plan = storyteller.plan
    motif = " Pip ate honey cake by the mill."
    # Two turns say it (the second as an episode ends), then a third must not.
    llm.replies = [motif, " Later they all ate honey cake at home."]
    storyteller.next_turn(mood_for("neutral", None))
    storyteller.plan = storyteller.context.plan = storyteller.plan.model_copy(
        update={"cursor": len(plan.steps) - 1}
    )
    storyteller.next_turn(mood_for("neutral", None))
    assert storyteller.plan.episode == 2
    llm.replies = [" Soon they ate honey cake again. Then"]
    finished = storyteller.next_turn(mood_for("neutral", None))
    assert finished is not None and "honey cake" not in finished.record.text
    assert storyteller.guard_counts["motif"] >= 1
    # The goal's words (whole, and as plurals), the treasure's and the names are free.
    free = storyteller._repeat_exclusions()
    goal = storyteller.plan.goal
    assert {w.strip(",.").lower() for w in goal.split()} <= free
    last = goal.split()[-1].strip(",.").lower()
    assert f"{last}s" in free  # "acorns" when the goal says "acorn"
    assert (
        RepeatCheck([f"{goal}, they said.", f"{goal}, and so on."], free)(f"Still {goal}.") is None
    )
    # Within a turn only the cast's names and kinds and the places are free: the goal said
    # twice in one turn is the beat said again.
    near = storyteller._cast_and_places()
    assert storyteller.plan.hero.name.lower() in near and storyteller.plan.hero.kind in near
    assert {w.strip(",.").lower() for w in goal.split() if len(w) > 3} - near


def test_a_return_with_a_cap_of_two_sentences_is_the_goal_and_the_beat(
    store: StoryStore,
) -> None:
    llm = ScriptedLLM()
    storyteller = scripted(store, llm, sentences_per_turn=2)
    storyteller.next_turn(mood_for("neutral", None))
    storyteller.reader_returned()
    instruction = storyteller._instruction(mood_for("neutral", None))
    finished = storyteller.next_turn(mood_for("neutral", None))
    assert finished is not None and finished.record.text == instruction.given
    # A retry (the beat caught by the guards) still tells the goal first.
    assert instruction.opening.startswith(as_sentence(storyteller.plan.goal))


def test_what_nobody_heard_leaves_the_stored_turn_and_the_context(store: StoryStore) -> None:
    llm = ScriptedLLM(" Pip found a red feather. Hazel laughed at the sky.")
    storyteller = scripted(store, llm, sentences_per_turn=3)
    storyteller.next_turn(mood_for("neutral", None))
    told = storyteller.context.turns[0].text
    assert told.endswith("Pip found a red feather. Hazel laughed at the sky.")
    changes = storyteller.unsay([(0, "Hazel laughed at the sky."), (7, "Not a turn.")])
    kept = told.removesuffix(" Hazel laughed at the sky.")
    [change] = changes
    assert change["turn"] == 0 and change["text"] == kept
    sentences = change["sentences"]
    assert isinstance(sentences, list)
    assert sentences[-1] == {"text": "Hazel laughed at the sky.", "heard": False}
    assert all(s["heard"] for s in sentences[:-1])
    assert " ".join(s["text"] for s in sentences[:-1]) == kept
    assert storyteller.context.turns[0].text == kept
    assert store.turns(storyteller.story.id)[0].text == kept
    # Nothing it does not know: no change.
    assert storyteller.unsay([(0, "Hazel laughed at the sky.")]) == []


def test_a_turn_nobody_heard_is_taken_back_with_its_beat(store: StoryStore) -> None:
    llm = ScriptedLLM()
    storyteller = scripted(store, llm, sentences_per_turn=2)
    storyteller.next_turn(mood_for("neutral", None))
    plan_before = storyteller.plan
    calm_before = storyteller.calm_turns
    finished = storyteller.next_turn(mood_for("neutral", None))
    assert storyteller.calm_turns == calm_before + 1
    assert finished is not None and storyteller.plan != plan_before
    sentences = [(1, s) for s in finished.record.text.replace(". ", ".\n").splitlines()]
    changes = storyteller.unsay(sentences)
    assert changes and changes[0]["turn"] == 1 and changes[0]["text"] == ""
    assert storyteller.turn_count == 1
    assert [t.idx for t in store.turns(storyteller.story.id)] == [0]
    # The plan is as it was: the beat nobody heard is told next.
    assert storyteller.plan == plan_before
    assert storyteller.calm_turns == calm_before
    assert store.current_story() is not None
    assert storyteller._plan_of(store.current_story()) == plan_before  # type: ignore[arg-type]
    again = storyteller.next_turn(mood_for("neutral", None))
    assert again is not None and again.record.idx == 1
    assert again.record.beat["text"] == finished.record.beat["text"]
    # An earlier turn nobody heard at all is not taken back (only the last can be).
    first = storyteller.context.turns[0].text
    assert storyteller.unsay([(0, s) for s in first.replace(". ", ".\n").splitlines()]) == []
    assert storyteller.context.turns[0].text == first


def test_a_shift_told_after_a_turn_nobody_heard_tells_its_beat_again(store: StoryStore) -> None:
    """The daemon's hook runs as the answering turn begins: the turn nobody heard is taken
    back before the new one's number and beat are decided."""
    llm = ScriptedLLM()
    storyteller = scripted(store, llm, sentences_per_turn=2)
    storyteller.next_turn(mood_for("neutral", None))
    plan_before = storyteller.plan
    unheard = storyteller.next_turn(mood_for("neutral", None))
    assert unheard is not None and storyteller.plan != plan_before
    said = unheard.record.text.replace(". ", ".\n").splitlines()
    restored: list[bool] = []

    def skip() -> None:
        storyteller.unsay([(1, s) for s in said])
        restored.append(storyteller.plan == plan_before)

    storyteller.skip_unheard = skip
    answer = storyteller.next_turn(mood_for("sad", "neutral"))  # a shift
    # Taken back before the answer was planned: it is turn 1 again, planned from the plan
    # as it was before the turn nobody heard.
    assert restored == [True]
    assert answer is not None and answer.record.idx == 1
    storyteller.skip_unheard = None
    after = storyteller.next_turn(mood_for("sad", None))
    assert after is not None and after.record.idx == 2
    assert [t.idx for t in store.turns(storyteller.story.id)] == [0, 1, 2]
    told = [t.beat["text"] for t in store.turns(storyteller.story.id)]
    assert (
        unheard.record.beat["text"] in told
        or storyteller.plan.steps[storyteller.plan.cursor].text == unheard.record.beat["text"]
    )  # told again, or still to come


def test_a_sentence_whose_quotes_were_tidied_is_still_found() -> None:
    text = 'Poppy looked up. "Oh no!" she said. They ran home.'
    assert heard_and_not(text, ['"Oh no!" she said.', "They ran home."]) == [
        {"text": "Poppy looked up.", "heard": True},
        {"text": '"Oh no!" she said.', "heard": False},
        {"text": "They ran home.", "heard": False},
    ]
    assert heard_and_not(text, ["Not there."]) == [{"text": text, "heard": True}]
