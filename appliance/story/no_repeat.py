"""A no-repeat n-gram constraint applied while sampling.

Small models copy their own earlier turns: once the story has "the river was not just a
natural feature", the next turn says it again. This llama-cpp-python logits processor
forbids any token that would complete an n-gram (of tokens) already present in the
story so far or earlier in this reply, so the model must find new words. Short phrases
(names, "in the forest") stay free: only runs of ``n`` tokens are blocked.

A blocked token is blocked in every spelling (with or without its leading space, in
either case): otherwise the model dodges the ban by gluing words together ("the" +
"river" becomes "theriver").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

SENTENCE_BREAK = re.compile(r"[.!?…][\"'”’)]*\s+")
OPENING_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
LEADING = "\"'“‘( "


def sentence_openings(text: str) -> set[tuple[str, str]]:
    """The first two words of every sentence of ``text``, inside quotation marks too
    ('"We need to go," said Pip. Pip was cold.' -> we need, pip was)."""
    found = set()
    for sentence in SENTENCE_BREAK.split(text):
        first = OPENING_WORD.findall(sentence.lstrip(LEADING).lower())[:2]
        if len(first) == 2:
            found.add((first[0], first[1]))
    return found


class NoRepeatNGrams:
    def __init__(
        self,
        story_tokens: Sequence[Sequence[int]],
        n: int,
        prompt_length: int,
        *,
        openings: Sequence[Sequence[int]] = (),
        spellings: Callable[[int], Iterable[int]] | None = None,
        echo_tokens: Sequence[Sequence[int]] = (),
        free_tokens: Iterable[int] = (),
        sentence_openings: Iterable[tuple[str, str]] = (),
        lead: str = "",
    ) -> None:
        if n < 2:
            raise ValueError("n must be at least 2")
        self.n = n
        self.prompt_length = prompt_length
        # How earlier turns began (their first words, as tokens): the reply may not begin
        # the same way. Small models otherwise open every turn with the same words.
        self._openings = [list(tokens) for tokens in openings if len(tokens) >= 2]
        self._spellings = spellings
        self._next: defaultdict[tuple[int, ...], set[int]] = defaultdict(set)
        for tokens in story_tokens:
            self._add(list(tokens))
        # The instructions are guarded more tightly (three tokens): a small model that
        # is told "reveal something hidden or unexpected" writes exactly that.
        self._echo: defaultdict[tuple[int, ...], set[int]] = defaultdict(set)
        for tokens in echo_tokens:
            for i in range(len(tokens) - 2):
                self._echo[tuple(tokens[i : i + 2])].add(tokens[i + 2])
        # The cast's names: never banned, or the model dodges the ban by misspelling them
        # ("Bramble, Nutmeg" once told, the next turn says "Bramble, Rutmeg").
        self._free = frozenset(free_tokens)
        self._seen = prompt_length
        self.blocked = 0
        # How the last turns' sentences began: no sentence of the reply may begin the same
        # way. Small models copy the shape of their last reply ("Moss was scared ...",
        # "Moss was happy ...", "Moss was confused ..."), whatever words they put in it.
        self._then: defaultdict[str, set[str]] = defaultdict(set)
        for first, second in sentence_openings:
            self._then[first].add(second)
        self._lead = lead

    def _fresh_opening(self, input_ids: NDArray[np.intc], end: int) -> set[int]:
        """Tokens that would make the sentence being written begin like an earlier one."""
        if not self._then or not isinstance(self._spellings, TokenSpellings):
            return set()
        written = self._lead + self._spellings.text(input_ids[self.prompt_length : end])
        parts = SENTENCE_BREAK.split(written)
        for done in parts[:-1]:
            first = OPENING_WORD.findall(done.lstrip(LEADING).lower())[:2]
            if len(first) == 2:
                self._then[first[0]].add(first[1])
        # One word of the sentence so far, and nothing after it but punctuation ("Moss",
        # "Moss,"): the next word may not be the one that followed it before.
        current = parts[-1].lower()
        begun = OPENING_WORD.findall(current)
        if len(begun) != 1 or current.rstrip().endswith(("'", "’")):
            return set()
        return {t for word in self._then.get(begun[0], ()) for t in self._spellings.of(word)}

    def _add(self, tokens: list[int]) -> None:
        k = self.n - 1
        for i in range(len(tokens) - k):
            self._next[tuple(tokens[i : i + k])].add(tokens[i + k])

    def __call__(
        self, input_ids: NDArray[np.intc], scores: NDArray[np.single]
    ) -> NDArray[np.single]:
        k = self.n - 1
        generated_end = len(input_ids)
        if generated_end > self._seen:
            # The reply so far joins the forbidden n-grams: no loops within a turn either.
            start = max(self.prompt_length, self._seen - k)
            self._add([int(t) for t in input_ids[start:generated_end]])
            self._seen = generated_end
        if generated_end < self.prompt_length:
            return scores
        banned = set(self._next.get(tuple(int(t) for t in input_ids[generated_end - k :]), ()))
        banned.update(self._fresh_opening(input_ids, generated_end))
        if generated_end - self.prompt_length >= 2:
            banned.update(self._echo.get(tuple(int(t) for t in input_ids[generated_end - 2 :]), ()))
        written = [int(t) for t in input_ids[self.prompt_length : generated_end]]
        for begun in self._openings:
            if len(written) == len(begun) - 1 and written == begun[:-1]:
                banned.add(begun[-1])
        if banned and self._spellings is not None:
            banned = {other for token in banned for other in self._spellings(token)}
        banned -= self._free
        if banned:
            scores[list(banned)] = -np.inf
            self.blocked += 1
        return scores


class NoEarlyEnd:
    """No end of the reply before it has ``min_tokens`` tokens of its own: a reply that
    begins with a sentence written for the model (the beat) must add to it, or a small
    model, finding the reply already whole, ends it at once."""

    def __init__(self, end_tokens: Sequence[int], prompt_length: int, min_tokens: int) -> None:
        self.end_tokens = list(end_tokens)
        self.prompt_length = prompt_length
        self.min_tokens = min_tokens

    def __call__(
        self, input_ids: NDArray[np.intc], scores: NDArray[np.single]
    ) -> NDArray[np.single]:
        if len(input_ids) - self.prompt_length < self.min_tokens:
            scores[self.end_tokens] = -np.inf
        return scores


class TokenSpellings:
    """Which tokens of a vocabulary spell the same word: same text once the leading space
    is dropped and case folded (" River", "river", "River")."""

    def __init__(self, texts: Sequence[bytes]) -> None:
        self._texts = list(texts)
        groups: dict[bytes, list[int]] = defaultdict(list)
        keys = []
        for token, text in enumerate(texts):
            key = text.strip().lower()
            keys.append(key)
            if len(key) >= 2:  # not for punctuation and single letters
                groups[key].append(token)
        self._keys = keys
        self._groups = dict(groups)

    def text(self, tokens: Iterable[int]) -> str:
        """The text of ``tokens`` (undecodable bytes replaced)."""
        size = len(self._texts)
        joined = b"".join(self._texts[t] for t in map(int, tokens) if 0 <= t < size)
        return joined.decode("utf-8", errors="replace")

    def of(self, word: str) -> Iterable[int]:
        """Every token that spells ``word`` (any case, with or without its space)."""
        return self._groups.get(word.encode("utf-8"), ())

    def __call__(self, token: int) -> Iterable[int]:
        if 0 <= token < len(self._keys):
            return self._groups.get(self._keys[token], (token,))
        return (token,)
