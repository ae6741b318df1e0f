from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from appliance.mood import MoodSettings


def test_defaults_are_valid_and_documented() -> None:
    settings = MoodSettings()
    assert settings.mode == "reader"
    for name, info in MoodSettings.model_fields.items():
        assert info.description, f"{name} has no description"


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="half_life"):
        MoodSettings.model_validate({"half_life": 0.3})


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "party"},
        {"half_life_s": 0.0},
        {"emit_hz": 0.5},
        {"emit_hz": 31},
        {"track_iou": 1.5},
        {"track_timeout_s": -1},
        {"shift_margin": 1.2},
        {"min_dwell_s": -0.1},
        {"away_after_s": 100},
        {"facing_max_nose_offset": 0},
        {"reader_switch_ratio": 0.5},
    ],
)
def test_out_of_range_values_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MoodSettings.model_validate(values)
