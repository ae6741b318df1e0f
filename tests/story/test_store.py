from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.story.store import StoryStore, TurnRecord


def turn(idx: int, text: str = "Pip ran home.") -> TurnRecord:
    return TurnRecord(
        idx=idx,
        text=text,
        instruction="The reader is calm: take the next step of the journey.",
        mood_label="neutral",
        mood={"dominant": "neutral"},
        backend="local test",
        ttft_ms=120.0,
        duration_ms=900.0,
        tokens=20,
        attempts=1,
    )


def test_stories_and_turns_round_trip(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3")
    story = store.new_story("A fox.", "adventure", "all ages")
    store.append_turn(story.id, turn(0, "Pip woke up."))
    store.append_turn(story.id, turn(1, "He ran to the river."))
    assert [t.text for t in store.turns(story.id)] == ["Pip woke up.", "He ran to the river."]
    current = store.current_story()
    assert current is not None and current.id == story.id and current.turn_count == 2
    store.close()
    reopened = StoryStore(tmp_path / "s.sqlite3")
    assert [t.idx for t in reopened.turns(story.id)] == [0, 1]
    assert reopened.integrity_ok()


def test_wal_journal(tmp_path: Path) -> None:
    StoryStore(tmp_path / "s.sqlite3").close()
    db = sqlite3.connect(tmp_path / "s.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_new_story_ends_the_current_one(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3")
    first = store.new_story("A fox.", "adventure", "all ages")
    second = store.new_story("A whale.", "adventure", "all ages")
    current = store.current_story()
    assert current is not None and current.id == second.id
    ended = store.story(first.id)
    assert ended is not None and ended.ended


def test_a_turn_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3")
    story = store.new_story("A fox.", "adventure", "all ages")
    store.append_turn(story.id, turn(0))
    with pytest.raises(sqlite3.IntegrityError):
        store.append_turn(story.id, turn(0, "A second turn 0"))
    assert [t.text for t in store.turns(story.id)] == ["Pip ran home."]
    updated = store.story(story.id)
    assert updated is not None


def test_summary_and_fold_point_are_kept(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3")
    story = store.new_story("A fox.", "adventure", "all ages")
    store.save_summary(story.id, "Pip set out.", 4)
    saved = store.story(story.id)
    assert saved is not None and (saved.summary, saved.folded_upto) == ("Pip set out.", 4)


def test_exports(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3")
    story = store.new_story("A fox looks for a river.", "adventure", "all ages")
    store.append_turn(story.id, turn(0, "Pip woke up."))
    markdown = store.export_markdown(story.id)
    assert markdown.startswith(f"# Story {story.id}")
    assert "> A fox looks for a river." in markdown
    assert "Pip woke up." in markdown
    data = store.export_json(story.id)
    assert data["story"]["premise"] == "A fox looks for a river."
    assert data["turns"][0]["text"] == "Pip woke up."
    with pytest.raises(KeyError):
        store.export_json(999)
