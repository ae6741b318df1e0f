"""Figures for a whole told story: what a parent notices that a per-turn check cannot.

Lectures, echoes of the last few turns (the same things in new words), motifs that keep
coming back, turns that open the same way, letters outside the story's script, a cast
that drifts, episodes that never end, beats the turn did not tell. Tripwires for a
reader's judgement, not a replacement for it.

Content words are the words left once the common ones are taken out, cut to their first
six letters ("friend", "friends", "friendly" are one); the cast's names and kinds and the
world's place names are left out too, since a story rightly says them again and again.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance.story.guards import CastCheck, foreign_letters, lecture_reason, words
from appliance.story.quality import sentences_of

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers herself him himself his how
    i if in into is it its itself just me more most my myself no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    one two said says asked replied back way away around too let lets got get went go came
    come made make took take like looked look just still even ever all every much many
    something someone anything everyone everything thing things onto upon toward towards
    together again along across little big""".split()
)
STEM = 6


def content_words(text: str, exclude: frozenset[str] = frozenset()) -> list[str]:
    return [
        w[:STEM]
        for w in words(text)
        if len(w) >= 3 and w not in STOPWORDS and w not in exclude and not w.isdigit()
    ]


def lecture_share(texts: Iterable[str]) -> float:
    sentences = [s for text in texts for s in sentences_of(text)[0]]
    if not sentences:
        return 0.0
    return sum(1 for s in sentences if lecture_reason(s)) / len(sentences)


def echo3(texts: Sequence[str], exclude: frozenset[str] = frozenset()) -> float:
    """Mean share of a turn's content words already used in the three turns before it."""
    shares = []
    for index in range(1, len(texts)):
        own = set(content_words(texts[index], exclude))
        if not own:
            continue
        before = {w for t in texts[max(0, index - 3) : index] for w in content_words(t, exclude)}
        shares.append(len(own & before) / len(own))
    return sum(shares) / len(shares) if shares else 0.0


def motif_pairs(text: str, exclude: frozenset[str] = frozenset()) -> set[tuple[str, str]]:
    """Neighbouring content words in each sentence ("warm light", "friend approach")."""
    pairs: set[tuple[str, str]] = set()
    for sentence in sentences_of(text)[0] or [text]:
        tokens = content_words(sentence, exclude)
        pairs.update(itertools.pairwise(tokens))
    return pairs


MOTIF_WINDOW = 10
MOTIF_LOOKBACK = 10
MOTIF_TURNS = 2


REHASH_SHARE = 0.75
REHASH_MIN_WORDS = 4


class RepeatCheck:
    """What a parent would hear as "again?", though the words differ: a sentence with a
    pair of content words that already stood in ``MOTIF_TURNS`` of the last
    ``MOTIF_LOOKBACK`` turns ("motif": "I'll tell ... about it later", "enjoying each
    other's company"), so that no motif comes more than twice in ten turns (``motif_max``'s
    window); or a sentence whose content words mostly stood in one sentence of those turns
    ("rehash": "You're so happy and you look amazing" after "You're really hungry and you
    look amazing"), a copy that swaps a few words and so passes the copied-runs check.
    ``exclude`` are the words a story rightly says again (names, places, the goal's things);
    ``names`` (default: ``exclude``) the fewer left out within a turn, the cast's names and
    kinds and the places: a turn that says the goal's things twice in one breath is heard as
    saying its beat again ("the mother duck swam over" twice in a turn about finding her)."""

    def __init__(
        self,
        recent: Sequence[str],
        exclude: frozenset[str] = frozenset(),
        names: frozenset[str] | None = None,
    ) -> None:
        self.exclude = exclude
        self.names = exclude if names is None else names
        counts: Counter[tuple[str, str]] = Counter()
        for text in recent[-MOTIF_LOOKBACK:]:
            counts.update(motif_pairs(text, exclude))
        self.motifs = frozenset(pair for pair, n in counts.items() if n >= MOTIF_TURNS)
        self.sentences = [
            set(content_words(sentence, exclude))
            for text in recent[-MOTIF_LOOKBACK:]
            for sentence in sentences_of(text)[0]
        ]

    def __call__(self, sentence: str, this_turn: Sequence[str] = ()) -> str | None:
        """Why the sentence is heard as a repeat ("motif", "rehash"), or None. ``this_turn``
        are the turn's sentences before it, its beat among them: a small model likes to say
        its beat again ("... the mother duck swam over, and the duckling rushed to her. The
        mother duck swam over, and the ducklings rushed to her.")."""
        if motif_pairs(sentence, self.exclude) & self.motifs:
            return "motif"
        if rehashes(set(content_words(sentence, self.exclude)), self.sentences):
            return "rehash"
        own = set(content_words(sentence, self.names))
        if rehashes(own, [set(content_words(s, self.names)) for s in this_turn]):
            return "rehash"
        return None


def rehashes(own: set[str], earlier: Iterable[set[str]]) -> bool:
    """Whether most of a sentence's content words stood in one earlier sentence."""
    if len(own) < REHASH_MIN_WORDS:
        return False
    return any(len(own & before) >= REHASH_SHARE * len(own) for before in earlier)


def motif_max(
    texts: Sequence[str], exclude: frozenset[str] = frozenset()
) -> tuple[float, tuple[str, str] | None]:
    """The content-word pair found in the most turns of any stretch of 10 turns told (of the
    whole story, if shorter), as turns per 10: a motif that fills one episode counts, however
    rare it is in the rest of the story."""
    if not texts:
        return 0.0, None
    pairs = [motif_pairs(text, exclude) for text in texts]
    window = min(MOTIF_WINDOW, len(texts))
    best: tuple[int, tuple[str, str] | None] = (0, None)
    for start in range(len(texts) - window + 1):
        counts: Counter[tuple[str, str]] = Counter()
        for turn in pairs[start : start + window]:
            counts.update(turn)
        if counts:
            # The most turns; of equals, the first in order (a set's order is a hash's).
            pair, count = min(counts.items(), key=lambda found: (-found[1], found[0]))
            best = max(best, (count, pair), key=lambda found: found[0])
    return best[0] * 10 / window, best[1]


def rehash_share(
    texts: Sequence[str],
    exclude: frozenset[str] = frozenset(),
    names: frozenset[str] | None = None,
) -> float:
    """Share of sentences whose content words mostly stood in one sentence of the ten turns
    before, or earlier in the same turn (the same thing said again in other words); within
    a turn only ``names`` (default: ``exclude``) are left out, as in ``RepeatCheck``."""
    names = exclude if names is None else names
    told = [[set(content_words(s, exclude)) for s in sentences_of(t)[0]] for t in texts]
    near = [[set(content_words(s, names)) for s in sentences_of(t)[0]] for t in texts]
    found = total = 0
    for index, turn in enumerate(told):
        earlier = [s for before in told[max(0, index - MOTIF_LOOKBACK) : index] for s in before]
        for position, own in enumerate(turn):
            total += 1
            found += rehashes(own, earlier) or rehashes(
                near[index][position], near[index][:position]
            )
    return found / total if total else 0.0


def same_start(texts: Sequence[str]) -> float:
    """Share of turns (after the first) whose first two words open an earlier turn."""
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for text in texts:
        first = tuple(words(text)[:2])
        if first in seen:
            repeats += 1
        seen.add(first)
    return repeats / (len(texts) - 1) if len(texts) > 1 else 0.0


def foreign_turns(texts: Iterable[str]) -> int:
    return sum(1 for text in texts if foreign_letters(text))


def cast_problems(texts: Iterable[str], check: CastCheck) -> list[str]:
    """Sentences in which a character turns into another kind or the hero is renamed."""
    return [s for text in texts for s in sentences_of(text)[0] if check.reason(s)]


def beat_followed(text: str, beat: str, exclude: frozenset[str] = frozenset()) -> bool:
    """Whether a turn tells its beat: at least two of the beat's content words (all, if it
    has fewer) are in the turn."""
    keys = set(content_words(beat, exclude))
    if not keys:
        return True
    found = keys & set(content_words(text, exclude))
    return len(found) >= min(2, len(keys))


@dataclass(frozen=True, slots=True)
class StoryFigures:
    lecture: float
    echo3: float
    motif_max: float
    motif: str
    rehash: float
    same_start: float
    foreign: int
    cast_kept: bool
    cast_problems: list[str]
    episodes_begun: int
    episodes_ended: int
    beats_followed: float


def story_figures(
    turns: Sequence[tuple[str, dict[str, object]]],
    check: CastCheck,
    hero: str,
    names: frozenset[str],
    turn_names: frozenset[str] | None = None,
) -> StoryFigures:
    """Figures for told turns given as (text, beat); ``names`` are the words left out of
    content words (cast names and kinds, place names), ``turn_names`` those left out when a
    turn's sentences are matched with each other (default: ``names``)."""
    texts = [text for text, _beat in turns]
    motif, pair = motif_max(texts, names)
    problems = cast_problems(texts, check)
    episodes: dict[object, list[str]] = {}
    ended = set()
    for text, beat in turns:
        episodes.setdefault(beat.get("episode"), []).append(text)
        if beat.get("kind") == "ending":
            ended.add(beat.get("episode"))
    hero_seen = all(any(hero.lower() in t.lower() for t in told) for told in episodes.values())
    cast_names = frozenset(w for name in {hero, *check.others} for w in words(name))
    cast_names |= frozenset(w for name, _kind in check.members for w in words(name))
    followed = [beat_followed(text, str(beat.get("text", "")), cast_names) for text, beat in turns]
    return StoryFigures(
        lecture=round(lecture_share(texts), 3),
        echo3=round(echo3(texts, names), 3),
        motif_max=round(motif, 2),
        motif=" ".join(pair) if pair else "",
        rehash=round(rehash_share(texts, names, turn_names), 3),
        same_start=round(same_start(texts), 3),
        foreign=foreign_turns(texts),
        cast_kept=not problems and hero_seen,
        cast_problems=problems,
        episodes_begun=len(episodes),
        episodes_ended=len(ended),
        beats_followed=round(sum(followed) / len(followed), 3) if followed else 0.0,
    )
