from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_azure import FakeAzure

PASSAGES = [
    "The little fox found a warm lantern under the old oak tree. Its light danced over "
    "the water. Pip followed the stones.",
    "A heron lifted from the reeds and circled twice above the pond. Pip waved at it. "
    "The heron called back.",
    "Rain began to tap on the leaves, soft as a drum. Pip pulled his scarf tighter. "
    "Somewhere a door creaked open.",
    "The moon rose over the hill like a silver coin. Pip counted the stars aloud. "
    "He lost count at forty.",
    "A tiny mouse in a red coat stood on the bridge. She bowed to Pip politely. "
    "Then she asked him the way.",
]


class VariedReplies:
    """A different passage each call (the story guards reject a repeated one)."""

    def __init__(self) -> None:
        self._next = itertools.cycle(PASSAGES)

    def __call__(self, body: dict[str, Any]) -> str:
        return next(self._next)


@pytest.fixture
def fake_azure() -> Iterator[FakeAzure]:
    """A local server speaking Azure OpenAI's wire protocol (errors included)."""
    server = FakeAzure(reply=VariedReplies()).start()
    yield server
    server.stop()
