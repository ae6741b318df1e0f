"""How good a finished turn is: the quality gate's checks on a whole turn, and the
measures the quality benchmark reports (novelty, mood adherence)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from appliance.story.guards import (
    CastCheck,
    SentenceSplitter,
    cut_at_marker,
    ngrams,
    normalize,
    sentence_reason,
    words,
)

MIN_NOVELTY = 0.6
"""A turn with fewer new 4-word runs than this is stale: mostly copied from earlier turns."""

# What the sentiment of a turn should do for each instruction: the uplifting ones
# (comfort, soften, ease, something pleasant, keep the joy) should read positive; the
# others (reveal, next step, twist) should at least not turn gloomy.
EXPECTED_SENTIMENT = {
    "happy": "positive",
    "sad": "positive",
    "fear": "positive",
    "angry": "positive",
    "disgust": "positive",
    "surprise": "not negative",
    "neutral": "not negative",
    "bored": "not negative",
    "away": "not negative",
}


def novelty(text: str, earlier: Iterable[str], n: int = 4) -> float:
    """Share of the turn's word n-grams not seen anywhere earlier in the story."""
    grams = ngrams(words(text), n)
    if not grams:
        return 1.0
    seen: set[tuple[str, ...]] = set()
    for passage in earlier:
        seen.update(ngrams(words(passage), n))
    return sum(1 for g in grams if g not in seen) / len(grams)


def sentences_of(text: str) -> tuple[list[str], str]:
    splitter = SentenceSplitter()
    sentences = splitter.push(text)
    last, fragment = splitter.finish()
    return ([*sentences, last] if last else sentences), fragment


def turn_problems(
    text: str, earlier: list[str], prompt_texts: Iterable[str], cast: CastCheck | None = None
) -> list[str]:
    """Every reason a finished turn would be broken for a listener (empty: none)."""
    if not normalize(text):
        return ["empty"]
    problems = []
    clean, marker = cut_at_marker(text)
    if marker or clean != text:
        problems.append("marker")
    sentences, fragment = sentences_of(text)
    if fragment or not sentences:
        problems.append("fragment")
    prompt_grams: set[tuple[str, ...]] = set()
    for prompt in prompt_texts:
        prompt_grams.update(ngrams(words(prompt)))
    for sentence in sentences:
        reason = sentence_reason(sentence, prompt_grams, cast)
        if reason and reason not in problems:
            problems.append(reason)
    lowered = [normalize(s).lower() for s in sentences]
    if len(set(lowered)) < len(lowered) and "loop" not in problems:
        problems.append("loop")
    if novelty(text, earlier) < MIN_NOVELTY:
        problems.append("stale")
    return problems


def sentiment_ok(label: str, compound: float) -> bool:
    """Whether a turn's VADER compound score goes the way its instruction asked (the
    quality bench's ``tone_vader``: it asks a calm reader's trouble not to read negative,
    which a plot with troubles cannot be)."""
    if EXPECTED_SENTIMENT.get(label, "not negative") == "positive":
        return compound >= 0.05
    return compound > -0.05


DIRECTED = frozenset({"happy", "sad", "angry", "disgust", "fear"})
"""Moods that ask the story for a feeling: joy, comfort, safety."""


def answers_mood(label: str, beat: Mapping[str, object], compound: float) -> bool:
    """Whether a told turn answers the mood it was told for: a smile, a frown or fear is
    answered by a turn that does not read negative (VADER compound above -0.05: the
    trouble eased, comfort, safety, the funny branch); a calm, surprised, bored or absent
    reader by a turn that moves the story (a plan step, a reveal or a twist, not a
    comfort or a safety moment)."""
    if label in DIRECTED:
        return compound > -0.05
    return beat.get("step") is not None or beat.get("kind") in {"reveal", "twist"}
