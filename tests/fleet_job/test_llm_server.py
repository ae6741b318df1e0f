"""The story model behind a real llama.cpp server (llama-cpp-python's own, on
127.0.0.1) for the fleet job: streamed turns, and a server that is down puts the turn off
instead of failing the batch."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.fleet.venue_llm import VenueLLMConfig, write_turn
from appliance.model_files.manifest import REPO_MODELS_DIR
from appliance.story.llm import ChatMessage, GenerationRequest, GenerationStats
from appliance.story.server_backend import server_story_llm
from tests.appliance_run.test_moodtale_run import free_port
from tests.story.conftest import smol_story

SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(REPO_MODELS_DIR / SMOL_FILE), "--model_alias", "story",
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--verbose", "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the llama.cpp server did not come up"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def config(url: str) -> VenueLLMConfig:
    story = smol_story(sentences_per_turn=2)
    return VenueLLMConfig(
        story=story.model_dump(mode="json"),
        models_dir=str(REPO_MODELS_DIR),
        backend="server",
        server_url=url,
        calls_per_minute=600,
    )


def test_a_llama_cpp_server_streams_the_story(llama_server: str) -> None:
    llm = server_story_llm(llama_server)
    stats = GenerationStats()
    request = GenerationRequest(
        messages=(
            ChatMessage("system", "You tell short stories for children."),
            ChatMessage("user", "Begin a story about a fox in one sentence."),
        ),
        max_tokens=40,
        temperature=0.0,
        seed=1,
    )
    pieces = list(llm.stream(request, threading.Event(), stats))
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert stats.ttft_s > 0 and llm.name.startswith("server http://127.0.0.1")


def test_the_fleet_job_tells_a_venue_turn_through_the_server(llama_server: str) -> None:
    written = write_turn(config(llama_server), "hall", "happy", [], 0)
    assert written is not None
    text, backend = written
    assert text.strip() and backend.startswith("server ")


def test_a_server_that_is_down_puts_the_turn_off(tmp_path: Path) -> None:
    started = time.monotonic()
    assert write_turn(config(f"http://127.0.0.1:{free_port()}"), "hall", "sad", [], 0) is None
    assert time.monotonic() - started < 30  # bounded: retries back off, then give up
