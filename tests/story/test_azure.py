"""The Azure story backend against a local server speaking the Azure OpenAI protocol,
through the official client, errors included."""

from __future__ import annotations

import threading
import time

import pytest

from appliance.azure_openai.resilience import AzureCaller, AzureUnavailableError
from appliance.story.azure_backend import AzureStoryLLM
from appliance.story.llm import BackendError, ChatMessage, GenerationRequest, GenerationStats
from tests.fake_azure import API_KEY, DEPLOYMENT, FakeAzure, default_reply
from tests.story.conftest import azure_settings

REQUEST = GenerationRequest(
    messages=(ChatMessage("system", "Tell stories."), ChatMessage("user", "Begin.")),
    max_tokens=80,
    temperature=0.7,
    seed=3,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def story_llm(
    server: FakeAzure, clock: FakeClock | None = None, **changes: object
) -> AzureStoryLLM:
    settings = azure_settings(server, **changes)
    caller = (
        AzureCaller(settings, clock=clock, sleep=clock.sleep, jitter=lambda: 0.5)
        if clock
        else AzureCaller(settings, jitter=lambda: 0.0)
    )
    return AzureStoryLLM(settings, caller=caller)


def text_of(llm: AzureStoryLLM, stats: GenerationStats | None = None) -> str:
    return "".join(llm.stream(REQUEST, threading.Event(), stats or GenerationStats()))


def test_streams_through_the_official_client(fake_azure: FakeAzure) -> None:
    llm = story_llm(fake_azure)
    stats = GenerationStats()
    assert text_of(llm, stats) == default_reply({})
    assert stats.ttft_s > 0 and stats.completion_tokens > 5
    (call,) = fake_azure.requests
    assert call.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert call.query["api-version"] == ["2024-10-21"]
    assert call.headers["api-key"] == API_KEY
    assert call.body["stream"] is True
    assert call.body["messages"][1] == {"role": "user", "content": "Begin."}
    assert call.body["max_tokens"] == 80 and call.body["seed"] == 3


def test_cancel_stops_the_stream(fake_azure: FakeAzure) -> None:
    llm = story_llm(fake_azure)
    cancel = threading.Event()
    pieces = []
    for piece in llm.stream(REQUEST, cancel, GenerationStats()):
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()
    assert len(pieces) == 2


def test_a_short_retry_after_is_honoured(fake_azure: FakeAzure) -> None:
    fake_azure.queue("429:1")
    llm = story_llm(fake_azure)
    started = time.monotonic()
    assert text_of(llm) == default_reply({})
    assert time.monotonic() - started >= 0.9
    assert len(fake_azure.requests) == 2


def test_a_long_retry_after_makes_azure_busy_without_calling_again(fake_azure: FakeAzure) -> None:
    fake_azure.queue("429:30")
    llm = story_llm(fake_azure)
    with pytest.raises(BackendError) as caught:
        text_of(llm)
    assert caught.value.retry_after == pytest.approx(30, abs=1)
    assert "rate limiting" in str(caught.value)
    with pytest.raises(BackendError):
        text_of(llm)
    assert len(fake_azure.requests) == 1  # the second call never left the device
    assert 28 < llm.unavailable_for() <= 30


def test_server_errors_back_off_then_open_the_circuit(fake_azure: FakeAzure) -> None:
    clock = FakeClock()
    llm = story_llm(fake_azure, clock, max_retries=2, circuit_failures=2, circuit_open_s=60)
    fake_azure.queue(*["500"] * 6)
    for _ in range(2):
        with pytest.raises(BackendError, match="InternalServerError"):
            text_of(llm)
    assert len(fake_azure.requests) == 6  # 3 tries per call, 2 calls
    assert clock.slept == [0.25, 0.5, 0.25, 0.5]  # exponential, jitter fixed at 1x
    with pytest.raises(BackendError):
        text_of(llm)
    assert len(fake_azure.requests) == 6  # circuit open: refused without a request
    clock.now += 61
    assert text_of(llm) == default_reply({})  # half-open trial succeeds and closes it
    assert llm.unavailable_for() == 0


def test_a_hung_server_times_out(fake_azure: FakeAzure) -> None:
    fake_azure.hang_s = 5
    fake_azure.queue("hang", "hang", "hang")
    llm = story_llm(fake_azure, timeout_s=0.5, max_retries=1)
    started = time.monotonic()
    with pytest.raises(BackendError, match="APITimeoutError"):
        text_of(llm)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("behaviour", ["malformed", "error-midstream"])
def test_a_broken_stream_is_a_failure_not_a_crash(fake_azure: FakeAzure, behaviour: str) -> None:
    fake_azure.queue(behaviour)
    llm = story_llm(fake_azure)
    pieces: list[str] = []
    with pytest.raises(BackendError, match="stream broke"):
        for piece in llm.stream(REQUEST, threading.Event(), GenerationStats()):
            pieces.append(piece)
    assert 1 <= len(pieces) <= 3
    assert llm.caller.breaker.consecutive == 1


def test_a_stream_that_stalls_mid_way_times_out(fake_azure: FakeAzure) -> None:
    fake_azure.hang_s = 5
    fake_azure.queue("stall-midstream")
    llm = story_llm(fake_azure, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(BackendError, match="stream broke"):
        text_of(llm)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({"api_key": "wrong"}, "refused the key"), ({"deployment": "nope"}, "not found")],
)
def test_configuration_errors_stop_calls(
    fake_azure: FakeAzure, changes: dict[str, object], expected: str
) -> None:
    llm = story_llm(fake_azure, None, **changes)
    with pytest.raises(BackendError, match=expected):
        text_of(llm)
    calls = len(fake_azure.requests)
    with pytest.raises(BackendError):
        text_of(llm)
    assert len(fake_azure.requests) == calls
    assert llm.unavailable_for() > 500


def test_the_caller_refuses_while_busy() -> None:
    from appliance.azure_openai.settings import AzureSettings

    clock = FakeClock()
    caller = AzureCaller(AzureSettings(), clock=clock, sleep=clock.sleep)
    caller.busy_until = clock.now + 10
    with pytest.raises(AzureUnavailableError) as caught:
        caller.call("test", lambda: "never")
    assert caught.value.retry_after == pytest.approx(10)
