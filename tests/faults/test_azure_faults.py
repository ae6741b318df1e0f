"""Azure misbehaving under the running appliance (the story told by Azure alone): 500s,
429 with Retry-After, malformed and failing streams, a hung server. Backoff and the
circuit breaker keep the calls bounded; the page stays responsive; the story pauses
with a clear status and goes on when Azure recovers. A local server speaks Azure's wire
protocol (tests/fake_azure.py); everything else is real."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.daemon import Appliance
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir
from tests.fake_azure import FakeAzure
from tests.faults.conftest import PASSAGES
from tests.faults.waiting import wait_until
from tests.story.conftest import azure_settings, smol_story


def start(tmp_path: Path, fake_azure: FakeAzure, **azure: object) -> Appliance:
    frames = replay_dir(tmp_path, HAPPY, SAD)
    story = smol_story(reading_wpm=0, sentences_per_turn=2, backend="azure")
    settings = appliance_settings(
        tmp_path, frames, story=story, azure=azure_settings(fake_azure, **azure)
    )
    appliance = Appliance(settings)
    appliance.start()
    return appliance


class StatusProbe:
    """Asks for /api/status over HTTP every 100 ms and keeps the slowest answer."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/api/status"
        self.slowest_s = 0.0
        self.answers = 0
        self.azure_states: list[str] = []
        """What /api/status said of Azure at each answer."""
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(0.1):
                started = time.monotonic()
                try:
                    response = client.get(self.url)
                    if response.status_code != 200:
                        self.failures.append(str(response.status_code))
                    else:
                        self.azure_states.append(response.json()["story"].get("azure", ""))
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                self.answers += 1

    def __enter__(self) -> StatusProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def quick_breaker(tmp_path: Path, fake_azure: FakeAzure) -> Iterator[Appliance]:
    appliance = start(
        tmp_path, fake_azure, max_retries=1, circuit_failures=2, circuit_open_s=4, timeout_s=2
    )
    yield appliance
    appliance.shutdown()


def paused(appliance: Appliance) -> bool:
    return appliance.story_loop.state == "paused"


def test_server_errors_open_the_circuit_and_calls_stay_bounded(
    quick_breaker: Appliance, fake_azure: FakeAzure
) -> None:
    appliance = quick_breaker
    fake_azure.queue(*["500"] * 200)
    assert appliance.port is not None
    with StatusProbe(appliance.port) as probe:
        wait_until(lambda: paused(appliance), 60, "the story paused")
        reason = appliance.story_loop.reason or ""
        assert "Azure" in reason or "InternalServerError" in reason, reason
        started, calls_then = time.monotonic(), len(fake_azure.requests)
        time.sleep(12)
        # Three circuit windows of 4 s: a half-open trial each (2 tries), no more.
        during = len(fake_azure.requests) - calls_then
        assert during <= 8, during
        # While the circuit is open the status says so (and nothing is sent then).
        assert any(s.startswith("unavailable for") for s in probe.azure_states), set(
            probe.azure_states
        )
        assert appliance.teller.turn_count == 0
        elapsed = time.monotonic() - started
    assert not probe.failures and probe.answers >= elapsed * 5
    assert probe.slowest_s < 1.0, probe.slowest_s

    fake_azure.behaviours.clear()  # Azure recovers
    wait_until(lambda: appliance.teller.turn_count >= 1, 90, "the story going on")
    assert all(w.alive and w.restarts == 0 for w in appliance.supervisor.workers.values())


def test_429_retry_after_is_respected_without_calling_meanwhile(
    tmp_path: Path, fake_azure: FakeAzure
) -> None:
    fake_azure.queue("429:8")
    appliance = start(tmp_path, fake_azure, max_retry_wait_s=1)
    try:
        wait_until(lambda: len(fake_azure.requests) >= 1, 60, "the first call")
        asked_at = time.monotonic()
        wait_until(lambda: paused(appliance), 30, "the story paused (Azure busy)")
        assert "unavailable for" in appliance.status()["story"]["azure"]
        wait_until(lambda: appliance.teller.turn_count >= 1, 60, "the story going on")
        assert len(fake_azure.requests) >= 2
        # Nothing was sent before the 8 s Azure asked for had passed.
        first, second = fake_azure.requests[0].at, fake_azure.requests[1].at
        assert second - first >= 7.5, second - first
        assert asked_at >= first
    finally:
        appliance.shutdown()


@pytest.mark.parametrize("behaviour", ["malformed", "error-midstream", "stall-midstream", "hang"])
def test_broken_streams_lose_no_turn_and_keep_no_partial_one(
    quick_breaker: Appliance, fake_azure: FakeAzure, behaviour: str
) -> None:
    appliance = quick_breaker
    fake_azure.hang_s = 4  # longer than the 2 s timeout
    # The stream breaks in the second sentence, after a whole one went out: a turn kept in
    # part would be that first sentence alone.
    fake_azure.break_at_word = 14
    fake_azure.queue(behaviour, behaviour)
    wait_until(lambda: appliance.teller.turn_count >= 2, 120, "two whole turns")
    stored = appliance.store.turns(appliance.teller.story.id)
    whole_turns = {
        ". ".join(p.split(". ")[:2]) + ("" if p.split(". ")[1].endswith(".") else ".")
        for p in PASSAGES
    }
    for turn in stored:
        # Every stored turn is a whole one: the reply's first two sentences.
        assert turn.text in whole_turns, (turn.text, whole_turns)
    assert len(fake_azure.requests) >= len(stored) + 2  # the broken ones were asked, too
    assert all(w.alive and w.restarts == 0 for w in appliance.supervisor.workers.values())
