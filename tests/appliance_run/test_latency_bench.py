"""``moodtale bench latency`` end to end, short, on SmolLM2: what it reports, not how fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.bench.latency_bench import describe_latency_bench, run_latency_bench
from tests.appliance_run.conftest import HAPPY, appliance_settings, replay_dir
from tests.story.conftest import smol_story

KEYS = ("shift_ms", "first_token_ms", "first_audio_ms")


@pytest.mark.parametrize("listen", [False, True])
def test_each_switch_is_measured_from_frame_to_shift_to_token_to_audio(
    tmp_path: Path, listen: bool
) -> None:
    settings = appliance_settings(
        tmp_path, replay_dir(tmp_path, HAPPY), story=smol_story(sentences_per_turn=2)
    )
    result = run_latency_bench(settings, runs=2, listen=listen)
    assert result["runs"] == 2 and result["failed_runs"] == 0
    assert result["listen"] is listen
    for run in result["each"]:
        # In order: the new picture, then the shift, then the answer's first token (read
        # over HTTP), then its audio written.
        assert 0 < run["shift_ms"] < run["first_token_ms"] < run["first_audio_ms"]
    for key in KEYS:
        assert result[f"{key}_p50"] <= result[f"{key}_max"]
        assert result[f"{key}_max"] == max(run[key] for run in result["each"])
    assert 0 <= result["answered_from_prepared"] <= result["runs"]
    assert "(b) first token of the answering turn (SSE)" in describe_latency_bench(result)
