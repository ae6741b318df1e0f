"""``moodtale bench soak``, short, on SmolLM2: what it measures and reports."""

from __future__ import annotations

from pathlib import Path

from appliance.bench.soak_bench import describe_soak_bench, run_soak_bench
from tests.appliance_run.conftest import HAPPY, appliance_settings, replay_dir
from tests.cli_process import moodtale, moodtale_env

KEYS = (
    "minutes",
    "turns",
    "frames",
    "worker_restarts",
    "errors",
    "rss_start_mb",
    "rss_end_mb",
    "rss_growth_pct",
    "fds_start",
    "fds_end",
)


def test_a_short_soak_reports_every_figure(tmp_path: Path) -> None:
    settings = appliance_settings(tmp_path, replay_dir(tmp_path, HAPPY))
    result = run_soak_bench(settings, minutes=0.25)
    assert set(KEYS) <= set(result)
    assert 0.24 <= result["minutes"] < 0.4
    assert result["turns"] >= 1
    assert result["frames"] > 0.25 * 60 * 5  # the replay runs at 15 fps
    assert result["worker_restarts"] == 0 and result["errors"] == 0, result["first_errors"]
    assert result["rss_start_mb"] > 0 and result["rss_end_mb"] > 0
    assert result["fds_start"] > 0 and result["fds_end"] > 0
    assert result["events_read"] > 0 and result["reader_connected"]
    assert "worker restarts 0, errors logged 0" in describe_soak_bench(result)


def test_the_command_wants_a_sane_number_of_minutes(tmp_path: Path) -> None:
    for bad in ("0", "-1", "soon"):
        done = moodtale("bench", "soak", "--minutes", bad, env=moodtale_env())
        assert done.returncode == 2
        assert "minutes" in done.stderr
