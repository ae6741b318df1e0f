"""Stories and their turns in SQLite, so a story survives reboots.

WAL journal, one transaction per finished turn: a turn is written whole or not at all,
and a process killed mid-turn leaves every earlier turn intact and no half turn.

When the state directory cannot be written (disk full, read-only, gone, an I/O error)
the store moves to memory with what it could read, says so in ``problem``, and the
story goes on. It tries the file again every ``retry_s`` at the next write; when that
works, everything told meanwhile is written back: nothing is lost unless the process
ends before the disk recovers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_FILE_S = 30.0
"""In memory, try the file again this often (at the next write)."""

SCHEMA_VERSION = 2
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
    ended INTEGER NOT NULL DEFAULT 0,
    plan TEXT NOT NULL DEFAULT ''
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
    beat TEXT NOT NULL DEFAULT '{}',
    UNIQUE (story_id, idx)
);
"""
ADDED_COLUMNS = (
    ("stories", "plan", "TEXT NOT NULL DEFAULT ''"),
    ("turns", "beat", "TEXT NOT NULL DEFAULT '{}'"),
)
"""Columns added since version 1: a store written before them gains them on open."""


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
    beat: dict[str, Any] = field(default_factory=dict)
    """The plan's beat this turn told (kind, text, episode; empty before plans)."""


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
    plan: str = ""
    """The story's plan as JSON (empty: a story from before plans)."""


class StoryStore:
    """One connection, one lock: the storyteller writes, the web page and the CLI read."""

    def __init__(self, path: Path, retry_s: float = RETRY_FILE_S) -> None:
        self.path = path
        self.retry_s = retry_s
        self.problem: str | None = None
        """Why the story is only in memory now; None while it is saved to ``path``."""
        self._lock = threading.Lock()
        self._in_memory = False
        self._retry_at = 0.0
        try:
            try:
                self._db = self._open_file()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) or not self.path.is_file():
                    raise
                self._set_aside_unreadable(exc)
                self._db = self._open_file()
        except (OSError, sqlite3.DatabaseError) as exc:
            self._db = self._memory_copy(None)
            self._to_memory(exc)

    def _set_aside_unreadable(self, exc: sqlite3.DatabaseError) -> None:
        """A file that is not (or no longer) a database: keep it for inspection under
        another name and begin a new one, rather than refuse to tell stories."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = self.path.with_name(f"{self.path.name}.unreadable-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.replace(Path(f"{kept}{suffix}"))
        log.error(
            "story store: %s is unreadable (%s); kept as %s, starting anew", self.path, exc, kept
        )

    def _open_file(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._prepare(db, wal=True)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _prepare(db: sqlite3.Connection, *, wal: bool) -> None:
        db.row_factory = sqlite3.Row
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            for table, column, declaration in ADDED_COLUMNS:
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _memory_copy(self, source: sqlite3.Connection | None) -> sqlite3.Connection:
        """A database in memory holding what can still be read: from ``source``, else
        from the file (read-only), else nothing."""
        memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        try:
            if source is None and self.path.is_file():
                source = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
                try:
                    source.backup(memory)
                finally:
                    source.close()
            elif source is not None:
                source.backup(memory)
        except sqlite3.DatabaseError as exc:
            log.warning("could not read the saved stories (%s); starting afresh in memory", exc)
            memory.close()
            memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._prepare(memory, wal=False)
        return memory

    def _to_memory(self, exc: BaseException) -> None:
        self._in_memory = True
        self._retry_at = time.monotonic() + self.retry_s
        self.problem = (
            f"cannot save the story in {self.path.parent} ({exc}); it goes on in memory and "
            "is written back when the disk can take it"
        )
        log.warning("story store: %s", self.problem)

    def _back_to_file(self) -> None:
        """In memory: write everything back to the file, if the disk takes it now."""
        self._retry_at = time.monotonic() + self.retry_s
        try:
            target = self._open_file()
        except (OSError, sqlite3.DatabaseError) as exc:
            log.debug("story store: the file is still unusable (%s)", exc)
            return
        try:
            self._db.backup(target)
            # The copy brought the memory database's header (no WAL): set it again.
            target.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            target.close()
            log.debug("story store: writing back failed (%s)", exc)
            return
        self._db.close()
        self._db = target
        self._in_memory = False
        self.problem = None
        log.info("story store: saved to %s again; nothing was lost", self.path)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one transaction; if the file fails, in memory instead."""
        with self._lock:
            if self._in_memory and time.monotonic() >= self._retry_at:
                self._back_to_file()
            try:
                return self._transaction(work)
            except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
                raise
            except sqlite3.DatabaseError as exc:
                if self._in_memory:
                    raise
                failed = self._db
                self._db = self._memory_copy(failed)
                with contextlib.suppress(sqlite3.Error):
                    failed.close()
                self._to_memory(exc)
                return self._transaction(work)

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = work(self._db)
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        return result

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    def close(self) -> None:
        with self._lock:
            if self._in_memory:
                self._back_to_file()
                if self._in_memory:
                    log.warning(
                        "story store: closing while the disk is unusable; "
                        "the turns told since are lost"
                    )
            with contextlib.suppress(sqlite3.Error):
                self._db.close()

    @property
    def in_memory(self) -> bool:
        return self._in_memory

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
            plan=row["plan"],
        )

    _STORY_SELECT = (
        "SELECT s.*, (SELECT COUNT(*) FROM turns t WHERE t.story_id = s.id) AS turn_count "
        "FROM stories s"
    )

    def new_story(self, premise: str, genre: str, audience: str, plan: str = "") -> StoryRecord:
        """Start a story; the one in progress (if any) ends."""
        now = time.time()

        def write(db: sqlite3.Connection) -> int:
            db.execute("UPDATE stories SET ended = 1, updated_at = ? WHERE ended = 0", (now,))
            cursor = db.execute(
                "INSERT INTO stories (created_at, updated_at, premise, genre, audience, plan) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (now, now, premise, genre, audience, plan),
            )
            return int(cursor.lastrowid or 0)

        story = self.story(self._write(write))
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
        self._write(
            lambda db: db.execute(
                "UPDATE stories SET summary = ?, folded_upto = ?, updated_at = ? WHERE id = ?",
                (summary, folded_upto, time.time(), story_id),
            )
        )

    def save_plan(self, story_id: int, plan: str) -> None:
        self._write(
            lambda db: db.execute(
                "UPDATE stories SET plan = ?, updated_at = ? WHERE id = ?",
                (plan, time.time(), story_id),
            )
        )

    # -- turns ----------------------------------------------------------------------------

    def append_turn(
        self,
        story_id: int,
        turn: TurnRecord,
        *,
        plan: str | None = None,
        summary: tuple[str, int] | None = None,
    ) -> None:
        """Write one finished turn, and the plan and summary as they are after it, in one
        transaction: a restart finds the turn and the plan's next step together."""

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO turns (story_id, idx, created_at, text, instruction, mood_label, "
                "mood, backend, ttft_ms, duration_ms, tokens, attempts, beat) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    json.dumps(turn.beat),
                ),
            )
            db.execute("UPDATE stories SET updated_at = ? WHERE id = ?", (time.time(), story_id))
            if plan is not None:
                db.execute("UPDATE stories SET plan = ? WHERE id = ?", (plan, story_id))
            if summary is not None:
                db.execute(
                    "UPDATE stories SET summary = ?, folded_upto = ? WHERE id = ?",
                    (*summary, story_id),
                )

        self._write(write)

    def rewrite_turn(self, story_id: int, idx: int, text: str) -> None:
        """A turn's text as it was heard (sentences nobody heard taken out)."""
        self._write(
            lambda db: db.execute(
                "UPDATE turns SET text = ? WHERE story_id = ? AND idx = ?", (text, story_id, idx)
            )
        )

    def untell_turn(self, story_id: int, idx: int, *, plan: str, summary: tuple[str, int]) -> None:
        """Take back the last turn (nobody heard any of it), and the plan and summary as
        they were before it, in one transaction."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM turns WHERE story_id = ? AND idx = ?", (story_id, idx))
            db.execute(
                "UPDATE stories SET plan = ?, summary = ?, folded_upto = ?, updated_at = ? "
                "WHERE id = ?",
                (plan, *summary, time.time(), story_id),
            )

        self._write(write)

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
                beat=json.loads(r["beat"] or "{}"),
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
            if turn.beat.get("kind") == "ending":
                lines += [f"*The end of episode {turn.beat.get('episode', '')}.*", ""]
        return "\n".join(lines)
