"""The quality gate, the no-repeat constraint, and a whole story from the smallest model."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from appliance.bench.quality_bench import scripted_moods
from appliance.commands.story import mood_for
from appliance.story.backends import StoryBackends
from appliance.story.guards import ngrams, words
from appliance.story.llama_backend import LlamaBackend
from appliance.story.llm import ChatMessage, GenerationRequest, GenerationStats
from appliance.story.no_repeat import (
    NoEarlyEnd,
    NoRepeatNGrams,
    TokenSpellings,
    sentence_openings,
)
from appliance.story.prompts import story_rules
from appliance.story.quality import answers_mood, novelty, sentiment_ok, turn_problems
from appliance.story.store import StoryStore
from appliance.story.storyteller import Storyteller, cast_check
from appliance.story.whole_story import story_figures
from tests.story.conftest import smol_story

EARLIER = [
    "Pip found a lantern glowing under the old oak tree.",
    "Its light showed a path of smooth stones across the stream.",
]
INSTRUCTION = "Next: a friend helps. Bring comfort: a kind friend or a hopeful sign."
RULES = story_rules(smol_story())


def problems(text: str) -> list[str]:
    return turn_problems(text, EARLIER, (RULES, INSTRUCTION))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Pip waved at the heron.<|im_end|>", "marker"),
        ("Pip waved at the heron.\nAssistant: more?", "marker"),
        ("Pip waved at the heron and then", "fragment"),
        ("Der kleine Fuchs lief schnell durch den dunklen Wald nach Hause.", "language"),
        ("for (i = 0; i < 10; i++) { print(i); } done.", "garbage"),
        ("Pip ran and ran and ran and ran and ran and ran.", "loop"),
        ("Pip ran home. Pip ran home.", "loop"),
        ("Bring comfort with a kind friend or a hopeful sign.", "echo"),
        ("Pip found a lantern glowing under the old oak tree again.", "stale"),
        ("Pip made a list of things: 1.", "list"),
        ("Then 10feet of snow fell on the hill.", "garbage"),
    ],
)
def test_the_gate_catches_each_kind_of_broken_turn(text: str, reason: str) -> None:
    assert reason in problems(text)


def test_a_good_turn_passes_the_gate() -> None:
    good = "Softly, a heron landed beside Pip. It offered to carry him over the deep water."
    assert problems(good) == []


def test_novelty_counts_new_four_word_runs() -> None:
    assert novelty("Pip found a lantern glowing under the old oak tree.", EARLIER) == 0.0
    assert novelty("A heron landed beside the quiet stream at dawn.", EARLIER) == 1.0
    assert novelty("Hi.", EARLIER) == 1.0


def test_sentiment_direction_per_instruction() -> None:
    assert sentiment_ok("sad", 0.4) and not sentiment_ok("sad", 0.0)
    assert sentiment_ok("surprise", 0.0) and not sentiment_ok("surprise", -0.3)


def test_a_turn_answers_its_mood() -> None:
    trouble = {"kind": "trouble", "step": 2, "way": "plain"}
    eased = {"kind": "trouble", "step": 2, "way": "eased"}
    comfort = {"kind": "comfort", "step": None, "way": "plain"}
    # A frown, fear or a smile: a turn that does not read negative.
    assert answers_mood("sad", eased, 0.0) and not answers_mood("sad", eased, -0.4)
    assert answers_mood("happy", trouble, 0.3) and not answers_mood("fear", trouble, -0.6)
    # A calm or absent reader: the story moves on, troubles and all; a comfort does not.
    assert answers_mood("neutral", trouble, -0.7) and answers_mood("away", trouble, -0.2)
    assert answers_mood("bored", {"kind": "twist", "step": None}, -0.5)
    assert not answers_mood("neutral", comfort, 0.5)
    # The line is -0.05, for every mood that asks for a feeling.
    for label in ("happy", "sad", "angry", "disgust", "fear"):
        assert answers_mood(label, trouble, -0.04) and not answers_mood(label, trouble, -0.05)
    # Surprise is answered by the reveal, not by a feeling.
    assert answers_mood("surprise", {"kind": "reveal", "step": None}, -0.6)
    assert not answers_mood("surprise", comfort, 0.9)


def test_the_constraint_bans_the_next_token_of_a_copied_run() -> None:
    story = [[1, 2, 3, 4, 5, 6]]
    processor = NoRepeatNGrams(story, n=4, prompt_length=10, openings=[[7, 8]])
    scores = np.zeros(20, dtype=np.single)
    # Prompt (10 tokens) then the reply so far: 1 2 3 -> "4" would complete 1 2 3 4.
    prompt = list(range(100, 110))
    out = processor(np.array([*prompt, 1, 2, 3], dtype=np.intc), scores.copy())
    assert out[4] == -np.inf and np.isfinite(np.delete(out, 4)).all()
    # The reply may not begin the way an earlier turn began (7 8).
    out = processor(np.array([*prompt, 7], dtype=np.intc), scores.copy())
    assert out[8] == -np.inf


def test_the_constraint_blocks_every_spelling_of_a_banned_word() -> None:
    spellings = TokenSpellings([b" river", b"river", b" River", b" the", b"x"])
    assert sorted(spellings(0)) == [0, 1, 2]
    assert list(spellings(4)) == [4]  # too short to group
    processor = NoRepeatNGrams([[3, 0]], n=2, prompt_length=1, spellings=spellings)
    out = processor(np.array([9, 3], dtype=np.intc), np.zeros(5, dtype=np.single))
    assert out[0] == out[1] == out[2] == -np.inf
    assert out[3] == out[4] == 0


def test_no_sentence_may_begin_as_one_of_the_last_turns_began() -> None:
    texts = [b" Moss", b" was", b" felt", b",", b" who", b".", b" He", b"Moss", b" Was", b"'s"]
    spellings = TokenSpellings(texts)
    openings = sentence_openings('Moss was scared. "We go," said Pip. Moss, who knew.')
    assert openings == {("moss", "was"), ("we", "go"), ("moss", "who")}
    processor = NoRepeatNGrams(
        [[99]], n=5, prompt_length=2, spellings=spellings, sentence_openings=openings
    )
    prompt = [50, 51]
    scores = np.zeros(len(texts), dtype=np.single)
    # A sentence that begins "Moss" may not go on "was" (any spelling) or "who".
    after = processor(np.array([*prompt, 0], dtype=np.intc), scores.copy())
    assert after[1] == after[8] == -np.inf and after[2] == 0
    after_comma = processor(np.array([*prompt, 0, 3], dtype=np.intc), scores.copy())
    assert after_comma[4] == -np.inf
    # Mid-sentence, "Moss was" is free: only openings are held to it.
    later = processor(np.array([*prompt, 6, 0], dtype=np.intc), scores.copy())
    assert later[1] == 0
    # A new sentence of the reply: held to it again, and to the reply's own openings.
    new = processor(np.array([*prompt, 6, 2, 5, 0], dtype=np.intc), scores.copy())
    assert new[1] == -np.inf
    own = processor(np.array([*prompt, 6, 2, 5, 6], dtype=np.intc), scores.copy())
    assert own[2] == -np.inf  # "He felt" began this reply
    # A possessive is a word not yet finished.
    assert processor(np.array([*prompt, 0, 9], dtype=np.intc), scores.copy())[1] == 0
    # Only the second word is held: "Moss felt" goes on as it likes.
    assert processor(np.array([*prompt, 0, 2], dtype=np.intc), scores.copy())[1] == 0


def test_the_words_written_for_the_model_begin_the_sentence() -> None:
    spellings = TokenSpellings([b" Moss", b" was", b" fox", b"."])
    openings = {("moss", "was")}

    def led(lead: str) -> NoRepeatNGrams:
        return NoRepeatNGrams(
            [[99]], 5, 1, spellings=spellings, sentence_openings=openings, lead=lead
        )

    scores = np.zeros(4, dtype=np.single)
    # Led by "Moss", the reply's first token continues that sentence's first word.
    assert led("Moss")(np.array([7], dtype=np.intc), scores.copy())[1] == -np.inf
    assert led("The fox")(np.array([7], dtype=np.intc), scores.copy())[1] == 0


def test_a_reply_led_by_its_beat_cannot_end_before_it_adds_to_it() -> None:
    processor = NoEarlyEnd([7, 8], prompt_length=3, min_tokens=2)
    scores = np.zeros(10, dtype=np.single)
    early = processor(np.array([1, 2, 3, 4], dtype=np.intc), scores.copy())
    assert early[7] == early[8] == -np.inf and early[4] == 0
    assert (processor(np.array([1, 2, 3, 4, 5], dtype=np.intc), scores.copy()) == 0).all()


def test_the_constraint_stops_a_real_model_copying_its_context(smollm: LlamaBackend) -> None:
    passage = (
        "The little fox walked along the river until he found a wooden bridge painted "
        "bright blue, and on the bridge sat an old tortoise eating a ripe red apple."
    )
    messages = (
        ChatMessage("system", "You repeat text exactly."),
        ChatMessage("user", f"Repeat this exactly, word for word:\n{passage}"),
    )

    def reply(avoid: tuple[str, ...]) -> str:
        request = GenerationRequest(
            messages=messages, max_tokens=60, temperature=0.0, seed=1, avoid_repeating=avoid
        )
        return "".join(smollm.stream(request, threading.Event(), GenerationStats()))

    copied = reply(())
    assert novelty(copied, [passage]) < 0.5  # left alone, it copies
    constrained = reply((passage,))
    long_runs = set(ngrams(words(passage), 6))
    assert not long_runs.intersection(ngrams(words(constrained), 6))


def test_thirty_turns_of_the_smallest_model_keep_the_hero_and_end(
    smollm: LlamaBackend, tmp_path: Path
) -> None:
    """Deterministic SmolLM2, 30 turns: no broken turn, the hero's name and kind kept all
    through, and episodes that reach their endings (the next keeping the hero)."""
    settings = smol_story()
    store = StoryStore(tmp_path / "stories.sqlite3")
    storyteller = Storyteller(
        settings, StoryBackends(settings, smollm, None), store, n_ctx=settings.llama.n_ctx
    )
    hero = storyteller.plan.hero
    check = cast_check(storyteller.plan, storyteller.parts)
    texts: list[str] = []
    told: list[tuple[str, dict[str, object]]] = []
    previous = None
    for label in scripted_moods(30):
        if previous == "away" and label != "away":
            storyteller.reader_returned()
        finished = storyteller.next_turn(mood_for(label, previous))
        previous = label
        assert finished is not None, f"turn {len(texts)} given up: {storyteller.guard_counts}"
        record = finished.record
        assert turn_problems(record.text, texts, (story_rules(settings),), check) == []
        texts.append(record.text)
        told.append((record.text, record.beat))
    store.close()
    assert storyteller.plan.hero == hero
    figures = story_figures(told, check, hero.name, frozenset())
    assert figures.cast_kept, figures.cast_problems
    assert figures.foreign == 0 and figures.lecture == 0
    assert figures.episodes_ended >= 2
    endings = [i for i, (_text, beat) in enumerate(told) if beat["kind"] == "ending"]
    assert all(told[i + 1][1]["kind"] == "setup" for i in endings if i + 1 < len(told))
    assert all(i < settings.episode_turns * (n + 1) for n, i in enumerate(endings))
