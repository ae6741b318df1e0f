"""``moodtale fleet run`` and ``moodtale bench fleet`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.cli_process import moodtale, moodtale_env
from tests.fleet_job.landing_files import land, mood_row
from tests.story.conftest import TEST_MODEL


def test_fleet_run_once_writes_the_windows_table(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, "1", [mood_row("hall", "a", s, "happy") for s in range(0, 30)])
    land(landing, "2", [mood_row("hall", "a", 90, "sad")])
    tables = tmp_path / "tables"
    done = moodtale(
        "fleet", "run", "--landing", landing, "--tables", tables,
        "--checkpoint", tmp_path / "checkpoint", "--once", "--no-story",
        "--window-s", "10", "--watermark-s", "5",
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    windows = DeltaTable(str(tables / "venue_windows")).to_pyarrow_table().to_pylist()
    assert [w["dominant"] for w in windows] == ["happy"] * 3
    assert all(w["faces"] == 20 for w in windows)


def test_bench_fleet_reports_every_figure(tmp_path: Path) -> None:
    env = moodtale_env(
        MOODTALE_STORY__LLAMA__MODEL=TEST_MODEL, MOODTALE_STORY__LLAMA__MAX_TOKENS="30"
    )
    done = moodtale(
        "bench", "fleet", "--json", "--venues", "2", "--devices", "2", "--seconds", "30",
        "--story", "local", env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for query in ("windows", "story"):
        for figure in ("rows_per_cpu_s", "cpu_s", "batch_ms_p50", "batch_ms_p95"):
            assert result[f"{query}_{figure}"] > 0, (query, figure)
    assert result["master"].startswith("local")
    # Memory counts the Python workers too (the landing source reads in them), while they
    # are alive: their kinds are named, and each query's peak is the sum of its parts.
    for query in ("windows", "story"):
        parts = result[f"{query}_memory_parts"]
        assert {"JVM", "this process", "pyspark.daemon pyspark.worker"} <= set(parts), parts
        assert result[f"{query}_memory_mb"] == round(sum(p["mb"] for p in parts.values()), 1)
    assert "pyspark.daemon pyspark.worker" in result["rss_parts"]
    # One daemon and pool for both queries' Python workers (the job's session settings):
    # the daemon and a worker per core, not a daemon and workers for each query.
    assert result["story_memory_parts"]["pyspark.daemon pyspark.worker"]["processes"] <= 3
    assert 100 < result["memory_mb"] < result["rss_mb"]  # shared pages counted once
    assert result["rows"] == result["windows_rows"] == 2 * 2 * 30
    assert result["windows_rows_dropped_late"] == 0
    # The newest row is at 29 s, the watermark 10 s behind it: only 0-10 s has closed.
    assert result["windows_written"] == result["story_rows"] == 2
    assert result["turns_written"] == 2  # each venue's first window begins its story
    assert result["story_backend"] == "local"
    # Read and committed: cleaned from the landing, but for the last batch's files.
    assert result["landing_files_left"] <= 2 * 2


def test_bench_fleet_reports_zero_windows_as_zero() -> None:
    """A run too short for any window to close (the command refuses it; the bench
    itself, called directly, must still say 0 rather than fail on a missing table)."""
    code = (
        "import json; from appliance.bench.fleet_bench import FleetShape, run_fleet_bench; "
        "print(json.dumps(run_fleet_bench(FleetShape(venues=3, devices=1, seconds=15))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["windows_rows"] == 45 and result["windows_written"] == 0
    assert result["story_rows"] == result["turns_written"] == 0
    assert result["story_backend"] == "none"


def test_bench_fleet_at_the_shortest_run_it_accepts_closes_a_window() -> None:
    done = moodtale(
        "bench", "fleet", "--json", "--venues", "2", "--devices", "1", "--seconds", "21",
        "--story", "none", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["windows_written"] == result["story_rows"] == 2
    assert result["turns_written"] == 0  # no model: the story query's own cost
    assert result["story_cpu_s"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--venues", "0"], "expected a whole number >= 1"),
        (["--seconds", "abc"], "expected a whole number"),
        (["--story", "azure"], "invalid choice"),
        (["--seconds", "20"], "--seconds 20 is too short: with 10 s windows and a 10 s watermark"),
        (["--seconds", "100", "--window-s", "60", "--watermark-s", "60"], "closes once the rows"),
        (["--master", "foo://x"], "--master foo://x: not a Spark master URL"),
    ],
)
def test_bench_fleet_says_what_is_wrong_with_its_arguments_in_a_line(
    args: list[str], message: str
) -> None:
    done = moodtale("bench", "fleet", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_bench_fleet_live_keeps_the_landing_small() -> None:
    done = moodtale(
        "bench", "fleet", "--json", "--live", "0.6", "--venues", "10", "--devices", "4",
        "--file-seconds", "4", "--trigger-s", "4", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    devices = 10 * 4
    assert result["files_landed"] >= 6 * devices  # 36 s: nine periods of files
    assert 0 < result["windows_rows"] <= result["rows_landed"]
    assert result["rows_dropped_late"] == 0  # devices land at their own times: none late
    # What waits is a few periods' files, however many have landed: read, then deleted.
    assert 0 < result["landing_files_max"] <= 3 * devices, result["samples"]
    assert len(result["samples"]) >= 3 and result["handoff_files_max"] <= 3
    # The landing source remembers a number per device (and the batch planned), not files.
    assert 0 < result["ledger_kb_max"] < 4, result["samples"]
    # The job's memory, its Python workers included.
    assert {"JVM", "this process", "pyspark.daemon pyspark.worker"} <= set(result["memory_parts"])
    assert result["memory_mb"] == round(sum(p["mb"] for p in result["memory_parts"].values()), 1)
    assert 100 < result["memory_mb_last"] <= result["memory_mb"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cleanup", "archive"], "--cleanup archive needs --archive DIR"),
        (["--cleanup", "off", "--archive", "elsewhere"], "--archive goes with --cleanup"),
        (["--cleanup", "shred"], "invalid choice"),
    ],
)
def test_fleet_run_says_what_is_wrong_with_its_cleanup_in_a_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = moodtale(
        "fleet", "run", "--landing", tmp_path / "landing", "--tables", tmp_path / "tables",
        "--checkpoint", tmp_path / "checkpoint", "--once", *args,
    )  # fmt: skip
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "tables").exists()  # refused before anything started
