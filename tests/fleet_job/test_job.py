"""The fleet job on real Spark (local mode), real Delta tables (delta-rs), and the small
real story model in the executors."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from deltalake import DeltaTable

from appliance.events import EMOTION_LABELS
from appliance.fleet.delta_sink import TURNS_TABLE, WINDOWS_TABLE
from appliance.fleet.job import HANDOFF, FleetJob, JobSettings, start
from appliance.fleet.venue_llm import VenueLLMConfig
from appliance.model_files.manifest import REPO_MODELS_DIR
from tests.fleet_job.landing_files import land, landed_name, mood_row, row
from tests.story.conftest import smol_story

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


pytestmark = pytest.mark.timeout(600)
RUN_TIMEOUT_S = 420
"""Under the tests' own timeout: a run that takes too long is stopped and fails here,
rather than being cut off by pytest inside a call to the JVM (which leaves the shared
Spark session unusable for the tests after it)."""


def settings(tmp_path: Path, backend: str = "none", **changes: Any) -> JobSettings:
    story = smol_story(sentences_per_turn=2)
    llm = VenueLLMConfig(
        story=story.model_dump(mode="json"),
        models_dir=str(REPO_MODELS_DIR),
        backend=backend,
        calls_per_minute=600,
    )
    values: dict[str, Any] = {
        "landing": str(tmp_path / "landing"),
        "tables": tmp_path / "tables",
        "checkpoint": str(tmp_path / "checkpoint"),
        "llm": llm,
        "window_s": 10,
        "watermark_s": 5,
        "turn_every": 3,
        "max_files_per_trigger": 1,
        **changes,
    }
    return JobSettings(**values)


def run_once(spark: SparkSession, job: JobSettings) -> FleetJob:
    running = start(spark, job, once=True)
    started = time.monotonic()
    running.await_termination(RUN_TIMEOUT_S)
    active = [q.name for q in running.queries if q.isActive]
    if active:
        running.stop()
    assert running.exception() is None, running.exception()
    assert not active, f"{active} still running after {time.monotonic() - started:.0f} s"
    return running


def table(job: JobSettings, name: str) -> pd.DataFrame:
    path = job.tables / name
    if not (path / "_delta_log").exists():
        return pd.DataFrame()
    return DeltaTable(str(path)).to_pandas()


def windows_of(job: JobSettings) -> pd.DataFrame:
    frame = table(job, WINDOWS_TABLE)
    return frame.sort_values(["venue", "window_start"]).reset_index(drop=True)


def test_windows_are_exact_means_of_sums_and_counts(spark: SparkSession, tmp_path: Path) -> None:
    job = settings(tmp_path)
    rows = [
        row("hall", "d1", 0, 2, happy=1.2, neutral=0.8),
        row("hall", "d2", 3, 1, sad=0.9, neutral=0.1),
        row("hall", "d1", 9, 0),  # somebody's device saw nobody that second
        row("hall", "d1", 12, 1, surprise=0.6, happy=0.4),
        row("porch", "d9", 4, 3, fear=1.5, neutral=1.5),
    ]
    land(tmp_path / "landing", 1, rows)
    land(tmp_path / "landing", 2, [row("hall", "d1", 60, 1, happy=1.0)])  # moves time on
    run_once(spark, job)
    windows = windows_of(job)
    hall0 = windows[(windows.venue == "hall") & (windows.window_start.dt.second == 0)].iloc[0]
    assert hall0.faces == 3 and hall0.devices == 2 and hall0.rows == 3
    assert hall0.happy == pytest.approx(1.2 / 3) and hall0.sad == pytest.approx(0.9 / 3)
    assert hall0.neutral == pytest.approx(0.9 / 3) and hall0.dominant == "happy"
    assert sum(hall0[label] for label in EMOTION_LABELS) == pytest.approx(1.0)
    hall10 = windows[(windows.venue == "hall") & (windows.window_start.dt.second == 10)].iloc[0]
    assert hall10.faces == 1 and hall10.surprise == pytest.approx(0.6)
    porch = windows[windows.venue == "porch"].iloc[0]
    assert porch.faces == 3 and porch.fear == pytest.approx(0.5)
    # The window at 60 s is still open (the watermark has not passed it): not written.
    assert len(windows) == 3


def test_late_rows_within_the_watermark_count_and_later_ones_are_dropped(
    spark: SparkSession, tmp_path: Path
) -> None:
    job = settings(tmp_path)
    landing = tmp_path / "landing"
    land(landing, "1", [row("hall", "d1", 1, 1, happy=1.0), row("hall", "d1", 31, 1, sad=1.0)])
    land(landing, "2", [row("hall", "d1", 40, 1, sad=1.0)])  # watermark now 35: 0-10 closes
    land(
        landing,
        "3",
        [
            row("hall", "d2", 2, 5, angry=5.0),  # window 0-10 was closed: dropped
            row("hall", "d2", 36, 1, happy=1.0),  # within the watermark: counted in 30-40
        ],
    )
    land(landing, "4", [row("hall", "d1", 90, 1, happy=1.0)])  # closes 30-40 and 40-50
    ran = run_once(spark, job)
    from appliance.bench.fleet_bench import dropped_late

    assert dropped_late(ran.windows) == 1  # what the benchmark reports: Spark's own count
    windows = windows_of(job)
    starts = [int(t.timestamp()) for t in windows.window_start]
    assert starts == [0, 30, 40]
    first, thirty = windows.iloc[0], windows.iloc[1]
    assert first.faces == 1 and first.angry == 0.0  # the late angry crowd never arrived
    assert thirty.faces == 2 and thirty.happy == pytest.approx(0.5)


def mood_seconds(venue: str, start: int, stop: int, label: str) -> list[dict[str, object]]:
    return [mood_row(venue, device, s, label) for s in range(start, stop) for device in ("a", "b")]


def turns_of(job: JobSettings) -> pd.DataFrame:
    return table(job, TURNS_TABLE).sort_values(["venue", "turn"]).reset_index(drop=True)


def test_each_venue_story_goes_on_across_batches_and_a_restart(
    spark: SparkSession, tmp_path: Path
) -> None:
    job = settings(tmp_path, backend="local")
    landing = tmp_path / "landing"
    land(landing, "1", mood_seconds("hall", 0, 20, "happy") + mood_seconds("porch", 0, 20, "sad"))
    land(landing, "2", mood_seconds("hall", 20, 40, "sad") + mood_seconds("porch", 20, 40, "sad"))
    run_once(spark, job)
    first = turns_of(job)
    assert set(first.venue) == {"hall", "porch"}

    # The query stops; a new one starts from the same checkpoint, and more rows land.
    land(landing, "3", mood_seconds("hall", 40, 70, "sad") + mood_seconds("porch", 40, 70, "fear"))
    land(landing, "4", mood_seconds("hall", 70, 90, "happy"))
    run_once(spark, job)
    turns = turns_of(job)
    for venue, told in turns.groupby("venue"):
        assert list(told.turn) == list(range(len(told))), f"{venue}: turns without a gap"
        assert all(isinstance(t, str) and t.strip() for t in told.text)
        assert all(str(b).startswith("local") for b in told.backend)
    hall = turns[turns.venue == "hall"]
    assert len(hall) > len(first[first.venue == "hall"])  # it went on after the restart
    # Hall: happy, then sad (a shift: a turn at once), then happy again (another).
    assert list(hall[hall["shift"]].dominant)[:2] == ["sad", "happy"]
    porch = turns[turns.venue == "porch"]
    assert "fear" in set(porch.dominant)


def forget_last_commits(checkpoint: Path, count: int) -> None:
    """Make Spark believe the last ``count`` batches were never committed: on restart it
    runs them again."""
    commits = sorted(p for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    for path in commits[-count:]:
        path.unlink()
        path.with_name(f".{path.name}.crc").unlink(missing_ok=True)


def test_a_replayed_batch_writes_nothing_twice(
    spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = settings(tmp_path, backend="local")
    landing = tmp_path / "landing"
    land(landing, "1", mood_seconds("hall", 0, 20, "happy"))
    land(landing, "2", mood_seconds("hall", 20, 40, "sad"))
    land(landing, "3", [mood_row("hall", "a", 90, "sad")])
    run_once(spark, job)
    windows_before, turns_before = windows_of(job), turns_of(job)
    versions = [DeltaTable(str(job.tables / t)).version() for t in (WINDOWS_TABLE, TURNS_TABLE)]
    assert len(windows_before) == 4 and len(turns_before) >= 2

    for query in ("windows", "story"):
        forget_last_commits(Path(job.checkpoint) / query, 1)
    caplog.set_level(logging.INFO, logger="appliance.fleet.delta_sink")
    run_once(spark, job)
    # Each query ran a batch again, and its table took it as a replay.
    for table in (WINDOWS_TABLE, TURNS_TABLE):
        assert f"{table}: batch" in caplog.text and "(a replay); skipped" in caplog.text, (
            table,
            caplog.text,
        )
        replayed = [
            line
            for line in caplog.text.splitlines()
            if f"{table}: batch" in line and "replay" in line
        ]
        assert replayed, (table, caplog.text)
    pd.testing.assert_frame_equal(windows_before, windows_of(job))
    pd.testing.assert_frame_equal(turns_before, turns_of(job))
    assert versions == [
        DeltaTable(str(job.tables / t)).version() for t in (WINDOWS_TABLE, TURNS_TABLE)
    ]


def test_read_files_leave_the_landing_and_nothing_is_lost_across_a_restart_and_a_replay(
    spark: SparkSession, tmp_path: Path
) -> None:
    job = settings(tmp_path, backend="local")
    landing = tmp_path / "landing"
    for n, first in enumerate(range(0, 60, 10)):  # six files, ten seconds each
        land(landing, f"{n}", mood_seconds("hall", first, first + 10, "happy"))
    run_once(spark, job)
    left = {p.name for p in landing.iterdir()}
    assert left <= {landed_name(5)}, left  # at most the last batch's file waits
    handoff = job.tables / HANDOFF
    handed = {p for p in handoff.iterdir() if p.suffix == ".parquet"}
    assert handed  # read by the story query in its one batch: they go as its next is planned

    forget_last_commits(Path(job.checkpoint) / "windows", 1)  # a crash before its commit
    for n, first in enumerate(range(60, 100, 10), start=6):
        land(landing, f"{n}", mood_seconds("hall", first, first + 10, "happy"))
    run_once(spark, job)
    assert {p.name for p in landing.iterdir()} <= {landed_name(9)}
    windows = windows_of(job)
    starts = [int(t.timestamp()) for t in windows.window_start]
    assert starts == list(range(0, 90, 10))  # each window once, none missing
    assert set(windows.faces) == {40} and set(windows.rows) == {20}  # every row, once
    assert not any(p.exists() for p in handed)
    turns = turns_of(job)
    assert list(turns.turn) == list(range(len(turns))) and len(turns) >= 2


def test_windows_alone_hand_nothing_on(spark: SparkSession, tmp_path: Path) -> None:
    job = settings(tmp_path)  # no story model: no story query to read a hand-off
    land(tmp_path / "landing", "1", mood_seconds("hall", 0, 40, "happy"))
    run_once(spark, job)
    assert len(windows_of(job)) == 3  # the newest row at 39 s, 5 s of watermark: 0-30 s
    assert not (job.tables / HANDOFF).exists() or not any((job.tables / HANDOFF).iterdir())


def test_read_files_can_be_archived_instead(spark: SparkSession, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    job = settings(tmp_path, cleanup="archive", archive=str(archive))
    landing = tmp_path / "landing"
    for n, first in enumerate(range(0, 40, 10)):
        land(landing, f"{n}", mood_seconds("hall", first, first + 10, "sad"))
    run_once(spark, job)
    archived = sorted(p.name for p in archive.rglob("*.parquet"))
    assert archived and set(archived) | {p.name for p in landing.iterdir()} == {
        landed_name(n) for n in range(4)
    }
    assert list(windows_of(job).dominant) == ["sad"] * 3  # 0-30 s closed


def test_archive_without_a_place_is_refused() -> None:
    from appliance.fleet.job import landing_options

    with pytest.raises(ValueError, match="archive directory"):
        landing_options(JobSettings("l", Path("t"), "c", VenueLLMConfig({}, ""), cleanup="archive"))


def test_only_landing_files_are_read_and_rows_missing_columns_are_left_out(
    spark: SparkSession, tmp_path: Path
) -> None:
    import pyarrow as pa

    from appliance.fleet.rows import landing_file_bytes

    job = settings(tmp_path)
    landing = tmp_path / "landing"
    land(landing, "1", mood_seconds("hall", 0, 20, "happy"))
    (landing / "notes.txt").write_text("someone's notes")
    (landing / "pi-old-000000000001.jsonl").write_text('{"venue": "hall"}\n')  # not upgraded
    other = pa.table({"venue": ["hall"], "device": ["x"], "second": [5]})  # no faces, no sums
    (landing / "odd-000000000001.parquet").write_bytes(landing_file_bytes(other))
    land(landing, "2", mood_seconds("hall", 20, 40, "happy"))
    run_once(spark, job)
    windows = windows_of(job)
    assert len(windows) == 3 and set(windows.faces) == {40} and set(windows.rows) == {20}
    assert (landing / "notes.txt").exists() and (landing / "pi-old-000000000001.jsonl").exists()


def test_a_replayed_batch_does_not_hand_its_windows_on_again(
    spark: SparkSession, tmp_path: Path
) -> None:
    from appliance.fleet.delta_sink import DeltaSink
    from appliance.fleet.job import write_windows
    from tests.fleet_job.test_venue_story import windows

    handoff = tmp_path / "tables" / HANDOFF
    batch = spark.createDataFrame(windows("happy", "sad"))
    sink = DeltaSink(tmp_path / "tables")
    write_windows(sink, handoff, batch, 5)
    handed = handoff / "windows-000000000005.parquet"
    assert handed.exists()
    handed.unlink()  # the story query read it and cleaned it up
    write_windows(sink, handoff, batch, 5)  # Spark runs batch 5 again after a crash
    assert not handed.exists()  # not left behind for nobody to read
    write_windows(sink, handoff, batch, 6)
    assert (handoff / "windows-000000000006.parquet").exists()


def test_spark_keeps_ten_batches_and_the_ledgers_sit_in_the_checkpoint(
    spark: SparkSession, tmp_path: Path
) -> None:
    import json

    assert spark.conf.get("spark.sql.streaming.minBatchesToRetain") == "10"
    job = settings(tmp_path)
    land(tmp_path / "landing", 1, mood_seconds("hall", 0, 10, "happy"))
    land(tmp_path / "landing", 2, mood_seconds("hall", 10, 30, "happy"))
    run_once(spark, job)
    ledger = Path(job.checkpoint) / "windows" / "landing"
    assert json.loads((ledger / "done.json").read_text())["seqs"] in ({"pi": 1}, {"pi": 2})


def test_spark_run_directly_collects_its_garbage_with_the_serial_collector(
    spark: SparkSession,
) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    beans = jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    assert {bean.getName() for bean in beans} == {"Copy", "MarkSweepCompact"}  # not G1
