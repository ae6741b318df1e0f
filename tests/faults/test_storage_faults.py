"""The state directory's disk is full or read-only: a clear status, the story goes on in
memory, nothing crashes, and what was told meanwhile is written back when the disk
recovers. Real SQLite errors: a real full (or read-only) filesystem where this machine
lets the test mount a small tmpfs, and SQLite's own read-only switch everywhere."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.daemon import Appliance
from appliance.story import STORE_FILE
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.faults.waiting import wait_until


def start(tmp_path: Path, state_dir: Path) -> Appliance:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    appliance = Appliance(appliance_settings(tmp_path, frames, state_dir=state_dir))
    appliance.store.retry_s = 2.0
    appliance.start()
    return appliance


def storage_problems(appliance: Appliance) -> list[str]:
    return [p for p in appliance.status()["problems"] if p.startswith("Storage:")]


def turns_on_disk(state_dir: Path, story_id: int) -> list[str]:
    with contextlib.closing(sqlite3.connect(state_dir / STORE_FILE)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT text FROM turns WHERE story_id = ? ORDER BY idx", (story_id,))
        return [text for (text,) in rows]


def turns_on_page(appliance: Appliance) -> list[str]:
    story = httpx.get(f"http://127.0.0.1:{appliance.port}/api/story", timeout=5).json()
    return [turn["text"] for turn in story["turns"]]


def test_a_database_that_turns_read_only_keeps_the_story_in_memory(tmp_path: Path) -> None:
    appliance = start(tmp_path, tmp_path / "state")
    try:
        wait_until(lambda: appliance.teller.turn_count >= 1, 120, "a first turn")
        appliance.store._db.execute("PRAGMA query_only=ON")  # SQLite refuses every write
        told = appliance.teller.turn_count
        wait_until(lambda: appliance.store.in_memory, 60, "the story moved to memory")
        problems = storage_problems(appliance)
        assert problems and "goes on in memory" in problems[0], problems
        assert appliance.status()["storage"]["saved"] is False
        wait_until(lambda: not appliance.store.in_memory, 60, "written back")
        assert not storage_problems(appliance)
        story_id = appliance.teller.story.id
        on_disk = turns_on_disk(tmp_path / "state", story_id)
        assert len(on_disk) > told  # the turn refused by the disk was not lost
        assert on_page_prefix(turns_on_page(appliance), on_disk)
        assert all(w.alive and w.restarts == 0 for w in appliance.supervisor.workers.values())
    finally:
        appliance.shutdown()


def on_page_prefix(page: list[str], disk: list[str]) -> bool:
    """The file holds every turn the page showed when it was read (and maybe newer)."""
    return disk[: len(page)] == page or page[: len(disk)] == disk


# -- a real small filesystem -------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as file, contextlib.suppress(OSError):
        while True:
            file.write(chunk)
            file.flush()
    return filler


def test_a_full_disk_keeps_the_story_going_and_loses_nothing(tmp_path: Path) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    with small_disk(tmp_path / "state", "2m") as state:
        appliance = start(tmp_path, state)
        try:
            wait_until(lambda: appliance.teller.turn_count >= 1, 120, "a first turn")
            filler = fill(state)
            wait_until(lambda: appliance.store.in_memory, 120, "the story moved to memory")
            problems = storage_problems(appliance)
            assert problems and "full" in problems[0], problems
            in_memory_from = appliance.teller.turn_count
            wait_until(
                lambda: appliance.teller.turn_count >= in_memory_from + 2,
                120,
                "two more turns with the disk full",
            )
            assert appliance.store.in_memory  # still full: still in memory
            filler.unlink()
            wait_until(lambda: not appliance.store.in_memory, 60, "written back")
            on_disk = turns_on_disk(state, appliance.teller.story.id)
            assert len(on_disk) >= in_memory_from + 2
            assert on_page_prefix(turns_on_page(appliance), on_disk)
            assert all(w.restarts == 0 for w in appliance.supervisor.workers.values())
        finally:
            appliance.shutdown()


def test_a_read_only_state_directory_at_start(tmp_path: Path) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    with small_disk(tmp_path / "state", "4m", read_only=True) as state:
        appliance = start(tmp_path, state)
        try:
            problems = storage_problems(appliance)
            assert any("device token cannot be saved" in p for p in problems), problems
            assert any("the disk is read-only" in p for p in problems), problems
            wait_until(lambda: appliance.teller.turn_count >= 2, 120, "turns, in memory")
            remount(state, "rw")
            wait_until(lambda: not appliance.store.in_memory, 60, "written back")
            assert len(turns_on_disk(state, appliance.teller.story.id)) >= 2
        finally:
            appliance.shutdown()


def test_fleet_mode_without_a_writable_state_directory_is_off_and_says_so(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    frames = replay_dir(tmp_path, HAPPY, SAD)
    fleet = {"enabled": True, "landing_dir": tmp_path, "venue": "hall"}
    appliance = Appliance(appliance_settings(tmp_path, frames, state_dir=blocker, fleet=fleet))
    appliance.start()
    try:
        problems = appliance.status()["problems"]
        assert any(p.startswith("fleet mode is off") for p in problems), problems
        wait_until(lambda: appliance.teller.turn_count >= 1, 120, "a turn, in memory")
    finally:
        appliance.shutdown()
