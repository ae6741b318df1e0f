"""Decides when the mood has changed enough to matter.

Two guards keep a jittery classifier from steering the story: a margin (the newcomer must
clearly beat the label in place, so two near-tied labels never trade places) and a dwell
time (it must stay ahead for a while, so a blip does not count).
"""

from __future__ import annotations

from collections.abc import Sequence


class ShiftDetector:
    def __init__(self, margin: float, min_dwell_s: float) -> None:
        self._margin = margin
        self._min_dwell_s = min_dwell_s
        self._held: int | None = None
        self._challenger: int | None = None
        self._challenger_since = 0.0

    @property
    def held(self) -> int | None:
        """Index of the label in place; None until the first reading established one."""
        return self._held

    def forget_challenger(self) -> None:
        """While nobody is watched there is no evidence that a challenger stayed ahead."""
        self._challenger = None

    def update(self, probabilities: Sequence[float], t: float) -> bool:
        """True exactly when the held label changes (the first label is not a change)."""
        leader = max(range(len(probabilities)), key=probabilities.__getitem__)
        if self._held is None:
            self._held = leader
            return False
        if leader == self._held or probabilities[leader] < probabilities[self._held] + self._margin:
            self._challenger = None
            return False
        if self._challenger != leader:
            self._challenger = leader
            self._challenger_since = t
        if t - self._challenger_since < self._min_dwell_s:
            return False
        self._held = leader
        self._challenger = None
        return True
