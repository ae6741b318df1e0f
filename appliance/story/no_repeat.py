"""A no-repeat n-gram constraint applied while sampling.

Small models copy their own earlier turns: once the story has "the river was not just a
natural feature", the next turn says it again. This llama-cpp-python logits processor
forbids any token that would complete an n-gram (of tokens) already present in the
story so far or earlier in this reply, so the model must find new words. Short phrases
(names, "in the forest") stay free: only runs of ``n`` tokens are blocked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


class NoRepeatNGrams:
    def __init__(self, story_tokens: Sequence[Sequence[int]], n: int, prompt_length: int) -> None:
        if n < 2:
            raise ValueError("n must be at least 2")
        self.n = n
        self.prompt_length = prompt_length
        self._next: defaultdict[tuple[int, ...], set[int]] = defaultdict(set)
        for tokens in story_tokens:
            self._add(list(tokens))
        self._seen = prompt_length
        self.blocked = 0

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
        if generated_end - self.prompt_length < 0 or generated_end < k:
            return scores
        banned = self._next.get(tuple(int(t) for t in input_ids[generated_end - k :]))
        if banned:
            scores[list(banned)] = -np.inf
            self.blocked += 1
        return scores
