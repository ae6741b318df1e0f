"""``moodtale fleet run`` and ``moodtale bench fleet`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from deltalake import DeltaTable

from tests.cli_process import moodtale
from tests.fleet_job.landing_files import land, mood_row


def test_fleet_run_once_writes_the_windows_table(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    land(landing, "a", [mood_row("hall", "a", s, "happy") for s in range(0, 30)])
    land(landing, "b", [mood_row("hall", "a", 90, "sad")])
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
    done = moodtale(
        "bench", "fleet", "--json", "--venues", "2", "--devices", "2", "--seconds", "30",
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for key in ("rows_per_s", "rows_per_cpu_s", "batch_latency_ms_p50", "batch_latency_ms_p95"):
        assert result[key] > 0, key
    assert result["rss_mb"] > 100
    assert result["rows"] == result["rows_read"] == 2 * 2 * 30
    # The newest row is at 29 s, the watermark 10 s behind it: only 0-10 s has closed.
    assert result["windows_written"] == 2


def test_bench_fleet_wants_sane_sizes() -> None:
    done = moodtale("bench", "fleet", "--venues", "0")
    assert done.returncode == 2 and "expected a whole number >= 1" in done.stderr
