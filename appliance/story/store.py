"""Stories and their turns in SQLite, so a story survives reboots.

WAL journal, one transaction per finished turn: a turn is written whole or not at all,
and a process killed mid-turn leaves every earlier turn intact and no half turn.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS stories (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    premise TEXT NOT NULL,
    genre TEXT NOT NULL,
    audience TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    folded_upto INTEGER NOT NULL DEFAULT 0,
    ended INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    story_id INTEGER NOT NULL REFERENCES stories(id),
    idx INTEGER NOT NULL,
    created_at REAL NOT NULL,
    text TEXT NOT NULL,
    instruction TEXT NOT NULL,
    mood_label TEXT NOT NULL,
    mood TEXT NOT NULL,
    backend TEXT NOT NULL,
    ttft_ms REAL NOT NULL,
    duration_ms REAL NOT NULL,
    tokens INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    UNIQUE (story_id, idx)
);
"""


@dataclass(frozen=True, slots=True)
class TurnRecord:
    idx: int
    text: str
    instruction: str
    mood_label: str
    mood: dict[str, Any]
    backend: str
    ttft_ms: float
    duration_ms: float
    tokens: int
    attempts: int
    created_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class StoryRecord:
    id: int
    created_at: float
    updated_at: float
    premise: str
    genre: str
    audience: str
    summary: str
    folded_upto: int
    ended: bool
    turn_count: int = 0


class StoryStore:
    """One connection, one lock: the storyteller writes, the web page and the CLI read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self._transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- stories --------------------------------------------------------------------------

    @staticmethod
    def _story(row: sqlite3.Row) -> StoryRecord:
        return StoryRecord(
            id=row["id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            premise=row["premise"],
            genre=row["genre"],
            audience=row["audience"],
            summary=row["summary"],
            folded_upto=row["folded_upto"],
            ended=bool(row["ended"]),
            turn_count=row["turn_count"],
        )

    _STORY_SELECT = (
        "SELECT s.*, (SELECT COUNT(*) FROM turns t WHERE t.story_id = s.id) AS turn_count "
        "FROM stories s"
    )

    def new_story(self, premise: str, genre: str, audience: str) -> StoryRecord:
        """Start a story; the one in progress (if any) ends."""
        now = time.time()
        with self._transaction() as db:
            db.execute("UPDATE stories SET ended = 1, updated_at = ? WHERE ended = 0", (now,))
            cursor = db.execute(
                "INSERT INTO stories (created_at, updated_at, premise, genre, audience) "
                "VALUES (?, ?, ?, ?, ?)",
                (now, now, premise, genre, audience),
            )
            story_id = cursor.lastrowid
        story = self.story(int(story_id or 0))
        assert story is not None
        return story

    def current_story(self) -> StoryRecord | None:
        rows = self._read(self._STORY_SELECT + " WHERE s.ended = 0 ORDER BY s.id DESC LIMIT 1")
        return self._story(rows[0]) if rows else None

    def story(self, story_id: int) -> StoryRecord | None:
        rows = self._read(self._STORY_SELECT + " WHERE s.id = ?", (story_id,))
        return self._story(rows[0]) if rows else None

    def stories(self) -> list[StoryRecord]:
        return [self._story(r) for r in self._read(self._STORY_SELECT + " ORDER BY s.id")]

    def save_summary(self, story_id: int, summary: str, folded_upto: int) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE stories SET summary = ?, folded_upto = ?, updated_at = ? WHERE id = ?",
                (summary, folded_upto, time.time(), story_id),
            )

    # -- turns ----------------------------------------------------------------------------

    def append_turn(self, story_id: int, turn: TurnRecord) -> None:
        """Write one finished turn, in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO turns (story_id, idx, created_at, text, instruction, mood_label, "
                "mood, backend, ttft_ms, duration_ms, tokens, attempts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    story_id,
                    turn.idx,
                    turn.created_at,
                    turn.text,
                    turn.instruction,
                    turn.mood_label,
                    json.dumps(turn.mood),
                    turn.backend,
                    turn.ttft_ms,
                    turn.duration_ms,
                    turn.tokens,
                    turn.attempts,
                ),
            )
            db.execute("UPDATE stories SET updated_at = ? WHERE id = ?", (time.time(), story_id))

    def turns(self, story_id: int) -> list[TurnRecord]:
        rows = self._read("SELECT * FROM turns WHERE story_id = ? ORDER BY idx", (story_id,))
        return [
            TurnRecord(
                idx=r["idx"],
                text=r["text"],
                instruction=r["instruction"],
                mood_label=r["mood_label"],
                mood=json.loads(r["mood"]),
                backend=r["backend"],
                ttft_ms=r["ttft_ms"],
                duration_ms=r["duration_ms"],
                tokens=r["tokens"],
                attempts=r["attempts"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def integrity_ok(self) -> bool:
        return bool(self._read("PRAGMA integrity_check")[0][0] == "ok")

    # -- export ---------------------------------------------------------------------------

    def export_json(self, story_id: int) -> dict[str, Any]:
        story = self.story(story_id)
        if story is None:
            raise KeyError(f"no story {story_id}")
        return {"story": asdict(story), "turns": [asdict(t) for t in self.turns(story_id)]}

    def export_markdown(self, story_id: int) -> str:
        story = self.story(story_id)
        if story is None:
            raise KeyError(f"no story {story_id}")
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(story.created_at))
        lines = [
            f"# Story {story.id}",
            "",
            f"*{story.genre.capitalize()} for {story.audience}, started {started}.*",
            "",
            f"> {story.premise}",
            "",
        ]
        for turn in self.turns(story_id):
            lines += [turn.text, "", f"<sub>turn {turn.idx + 1}: {turn.mood_label}</sub>", ""]
        return "\n".join(lines)
