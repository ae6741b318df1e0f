from __future__ import annotations

import dataclasses
import sqlite3
import time
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


# -- a state directory that cannot be written ------------------------------------------


def big_turn(idx: int) -> TurnRecord:
    return turn(idx, f"Turn {idx}. " + "Pip walked on and on. " * 400)


def saved_to_file(store: StoryStore) -> bool:
    return not store.in_memory and store.problem is None


def test_a_full_disk_moves_the_story_to_memory_and_back(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3", retry_s=0.5)
    story = store.new_story("A fox.", "adventure", "all ages")
    store.append_turn(story.id, big_turn(0))
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own "disk is full"
    store.append_turn(story.id, big_turn(1))
    assert store.in_memory and store.problem is not None
    assert "full" in store.problem and str(tmp_path) in store.problem
    store.append_turn(story.id, big_turn(2))  # the story goes on
    assert [t.idx for t in store.turns(story.id)] == [0, 1, 2]
    on_disk = sqlite3.connect(tmp_path / "s.sqlite3")
    assert on_disk.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 1
    time.sleep(0.6)
    store.append_turn(story.id, big_turn(3))  # the disk takes it again: written back
    assert saved_to_file(store)
    assert on_disk.execute("SELECT idx FROM turns ORDER BY idx").fetchall() == [
        (0,),
        (1,),
        (2,),
        (3,),
    ]
    assert on_disk.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    reopened = StoryStore(tmp_path / "s.sqlite3")
    assert reopened.integrity_ok() and not reopened.in_memory
    assert [t.idx for t in reopened.turns(story.id)] == [0, 1, 2, 3]


def test_a_read_only_database_keeps_the_story_in_memory(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3", retry_s=3600)
    story = store.new_story("A fox.", "adventure", "all ages")
    store.append_turn(story.id, turn(0))
    store._db.execute("PRAGMA query_only=ON")  # SQLite's own "read-only database"
    store.save_summary(story.id, "Pip set out.", 1)
    store.append_turn(story.id, turn(1))
    assert store.problem is not None and "readonly" in store.problem
    current = store.current_story()
    assert current is not None and current.summary == "Pip set out." and current.turn_count == 2


def test_an_unusable_state_directory_starts_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    store = StoryStore(blocker / "s.sqlite3", retry_s=3600)
    assert store.in_memory and store.problem is not None
    story = store.new_story("A fox.", "adventure", "all ages")
    store.append_turn(story.id, turn(0))
    assert [t.idx for t in store.turns(story.id)] == [0]
    store.close()  # says the turns are lost; does not raise


def test_an_unreadable_database_file_is_kept_aside_and_a_new_one_begun(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = StoryStore(path)
    assert not store.in_memory and store.problem is None
    story = store.new_story("A fox.", "adventure", "all ages")
    store.append_turn(story.id, turn(0))
    assert store.integrity_ok()
    kept = list(tmp_path.glob("s.sqlite3.unreadable-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not a database")


def test_the_plan_and_the_beat_are_written_with_the_turn(tmp_path: Path) -> None:
    store = StoryStore(tmp_path / "s.sqlite3")
    story = store.new_story("A fox.", "adventure", "all ages", plan='{"cursor": 0}')
    told = dataclasses.replace(turn(0), beat={"kind": "setup", "episode": 1})
    store.append_turn(story.id, told, plan='{"cursor": 1}', summary=("", 1))
    store.close()
    reopened = StoryStore(tmp_path / "s.sqlite3")
    again = reopened.story(story.id)
    assert again is not None and again.plan == '{"cursor": 1}' and again.folded_upto == 1
    assert reopened.turns(story.id)[0].beat == {"kind": "setup", "episode": 1}
    reopened.close()


def test_a_store_from_before_plans_gains_their_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE stories (id INTEGER PRIMARY KEY, created_at REAL NOT NULL,
            updated_at REAL NOT NULL, premise TEXT NOT NULL, genre TEXT NOT NULL,
            audience TEXT NOT NULL, summary TEXT NOT NULL DEFAULT '',
            folded_upto INTEGER NOT NULL DEFAULT 0, ended INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE turns (id INTEGER PRIMARY KEY, story_id INTEGER NOT NULL
            REFERENCES stories(id), idx INTEGER NOT NULL, created_at REAL NOT NULL,
            text TEXT NOT NULL, instruction TEXT NOT NULL, mood_label TEXT NOT NULL,
            mood TEXT NOT NULL, backend TEXT NOT NULL, ttft_ms REAL NOT NULL,
            duration_ms REAL NOT NULL, tokens INTEGER NOT NULL, attempts INTEGER NOT NULL,
            UNIQUE (story_id, idx));
        INSERT INTO stories VALUES (1, 0, 0, 'A fox.', 'adventure', 'all ages', '', 0, 0);
        INSERT INTO turns VALUES (1, 1, 0, 0, 'Pip woke up.', 'Begin.', 'neutral', '{}',
            'local test', 1, 1, 1, 1);
        PRAGMA user_version=1;
        """
    )
    old.close()
    store = StoryStore(path)
    story = store.current_story()
    assert story is not None and story.plan == ""
    assert [(t.text, t.beat) for t in store.turns(1)] == [("Pip woke up.", {})]
    store.save_plan(1, '{"cursor": 0}')
    assert (store.story(1) or story).plan == '{"cursor": 0}'
    store.close()
