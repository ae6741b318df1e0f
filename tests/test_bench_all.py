"""``moodtale bench all``: every benchmark in one go and one report a Pi owner can send in;
what it reports, not how fast (SmolLM2, a quick pass)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_process import moodtale, moodtale_env
from tests.story.conftest import TEST_MODEL


@pytest.mark.timeout(900)
def test_one_report_of_perception_story_speech_and_latency(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = moodtale_env(MOODTALE_STATE_DIR=str(tmp_path / "state"))
    done = moodtale(
        "bench", "all", "--quick", "--json", "--model", TEST_MODEL, "--out", out,
        env=env, timeout=840,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert json.loads(out.read_text()) == report, "the file is the report printed"
    assert report["errors"] == {}
    assert set(report["benches"]) == {"perception", "story", "speech", "latency"}
    # Progress goes to stderr as each starts.
    for name in report["benches"]:
        assert f"bench all: {name} ..." in done.stderr
        assert report["seconds"][name] > 0
    device = report["device"]
    for key in ("cpu", "cores", "arch", "python", "board", "memory_gb", "os", "kernel"):
        assert device[key], key
    perception, story = report["benches"]["perception"], report["benches"]["story"]
    speech, latency = report["benches"]["speech"], report["benches"]["latency"]
    assert perception["frames"] == 60 and perception["fps"] > 0
    assert story["model"] == TEST_MODEL and story["turns"] == 2 and story["turns_failed"] == 0
    assert story["ttft_warm_ms"] > 0 and story["tokens_per_s"] > 0
    assert speech["engine"] == "piper" and speech["turns"] == 1 and 0 < speech["rtf"] < 1
    assert latency["runs"] == 2 and latency["first_audio_ms_p50"] > 0


def test_a_benchmark_that_fails_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    env = moodtale_env(MOODTALE_STATE_DIR=str(tmp_path / "state"))
    done = moodtale(
        "bench", "all", "--quick", "--model", "no-such-model", "--out", out, env=env, timeout=300
    )
    assert done.returncode == 1
    report = json.loads(out.read_text())
    assert set(report["errors"]) == {"story", "latency"}, report["errors"]
    assert "no-such-model" in report["errors"]["story"]
    # The appliance is not started to wait for a story that cannot be told.
    assert report["errors"]["latency"].startswith("not run: the story model cannot be loaded")
    assert report["seconds"]["latency"] == 0
    assert set(report["benches"]) == {"perception", "speech"}
    # For a person: each part, the failures named, and where the whole report is.
    assert "[perception]" in done.stdout and "[speech]" in done.stdout
    assert "[story] FAILED after" in done.stdout
    assert f"The whole report: {out}" in done.stdout


@pytest.mark.parametrize("where", ["missing/report.json", "."])
def test_a_report_with_nowhere_to_go_is_refused_at_once(tmp_path: Path, where: str) -> None:
    out = tmp_path / where
    done = moodtale("bench", "all", "--out", out, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"moodtale: bench all: cannot write the report to {out}: ")
    assert done.stdout == "" and "bench all: perception" not in done.stderr, "nothing was run"
