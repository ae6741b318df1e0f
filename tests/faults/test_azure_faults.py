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
        assert "unavailable" in appliance.status()["story"]["azure"] or during > 0
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
        second = len(fake_azure.requests)
        assert second >= 2
        # Nothing was sent before the 8 s Azure asked for had passed.
        assert time.monotonic() - asked_at >= 7.5
    finally:
        appliance.shutdown()


@pytest.mark.parametrize("behaviour", ["malformed", "error-midstream", "hang"])
def test_broken_streams_lose_no_turn_and_keep_no_partial_one(
    quick_breaker: Appliance, fake_azure: FakeAzure, behaviour: str
) -> None:
    appliance = quick_breaker
    fake_azure.hang_s = 4  # longer than the 2 s timeout
    fake_azure.queue(behaviour, behaviour)
    wait_until(lambda: appliance.teller.turn_count >= 2, 120, "two whole turns")
    stored = appliance.store.turns(appliance.teller.story.id)
    # Every stored turn is whole sentences of a reply (never the words before the
    # stream broke).
    for turn in stored:
        assert any(p.startswith(turn.text) for p in PASSAGES), turn.text
        assert turn.text.endswith("."), turn.text
    assert appliance.story_loop.state != "paused" or appliance.teller.turn_count >= 2
    assert all(w.alive and w.restarts == 0 for w in appliance.supervisor.workers.values())
