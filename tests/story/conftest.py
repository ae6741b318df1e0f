from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.azure_openai.settings import AzureSettings
from appliance.story.llama_backend import LlamaBackend, LlamaSettings
from appliance.story.settings import StorySettings
from tests.fake_azure import API_KEY, DEPLOYMENT, FakeAzure

TEST_MODEL = "smollm2-135m-instruct"


def smol_llama(**changes: object) -> LlamaSettings:
    """SmolLM2 at temperature 0 with a fixed seed: the same text every run."""
    base = {"model": TEST_MODEL, "temperature": 0.0, "seed": 42, "n_ctx": 1024, "threads": 2}
    return LlamaSettings(**{**base, **changes})  # type: ignore[arg-type]


def smol_story(**changes: object) -> StorySettings:
    """The story settings of the tests: SmolLM2, and the same plan every run."""
    llama = changes.pop("llama", None) or smol_llama()
    changes.setdefault("plan_seed", 7)
    return StorySettings(llama=llama, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def smollm(models_dir: Path) -> Iterator[LlamaBackend]:
    """One loaded SmolLM2 for the tests that do not change the model itself."""
    backend = LlamaBackend(smol_llama(), models_dir)
    backend.load()
    yield backend
    backend.close()


@pytest.fixture
def fake_azure() -> Iterator[FakeAzure]:
    server = FakeAzure().start()
    yield server
    server.stop()


def azure_settings(server: FakeAzure, **changes: object) -> AzureSettings:
    base: dict[str, object] = {
        "endpoint": server.endpoint,
        "deployment": DEPLOYMENT,
        "api_key": API_KEY,
        "timeout_s": 2.0,
        "max_retries": 2,
        "max_retry_wait_s": 1.5,
        "circuit_failures": 3,
        "circuit_open_s": 30.0,
    }
    return AzureSettings(**{**base, **changes})  # type: ignore[arg-type]
