"""The API fuzzed from its own OpenAPI schema (schemathesis) against the whole appliance
over real HTTP, with the device token supplied so that the story controls are exercised
too: no 5xx, and every answer (status code, media type, headers, body) is what the schema
says. The event stream (it never ends) is tested in test_hostile_web.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from appliance.daemon import Appliance
from appliance.web.app import EVENTS_PATH, ApplianceView, create_app
from appliance.web.event_hub import EventHub
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    appliance = Appliance(appliance_settings(tmp_path, replay_dir(tmp_path, HAPPY, SAD)))
    appliance.start()
    try:
        yield appliance
    finally:
        appliance.shutdown()


def the_schema() -> dict[str, Any]:
    """What create_app serves at /openapi.json (the view is not needed to build it)."""
    return create_app(cast(ApplianceView, None), EventHub(), "unused").openapi()


# Built when the tests are collected, as schemathesis' pytest plugin needs (its lazy
# ``from_fixture`` does not work with pytest 9); test_the_served_schema_is_the_one_fuzzed
# checks that the running appliance serves this very schema.
schema = schemathesis.openapi.from_dict(the_schema()).exclude(path=EVENTS_PATH)


def test_the_served_schema_is_the_one_fuzzed(fuzzed: Appliance) -> None:
    served = httpx.get(f"http://127.0.0.1:{fuzzed.port}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == the_schema()
    assert set(served.json()["paths"]) == {
        "/api/health",
        "/api/status",
        "/api/story",
        "/api/events",
        "/api/audio/{seq}.wav",
        "/api/story/new",
        "/api/story/pause",
        "/api/story/resume",
    }


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_answers_as_its_schema_says(
    case: schemathesis.Case[Any], fuzzed: Appliance
) -> None:
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{fuzzed.port}",
        headers={"Authorization": f"Bearer {fuzzed.token}"},
        timeout=10,
    )
