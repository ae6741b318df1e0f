"""The page in a real headless browser (Debian's chromium, driven by Playwright): the
story grows as it is written, the mood changes when the replayed face does, and the page
logs no errors."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Playwright,
    Response,
    expect,
    sync_playwright,
)

from appliance.daemon import Appliance
from tests.appliance_run.conftest import HAPPY, SAD, appliance_settings, replay_dir

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # The machine may have no internet: no background calls home.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until(read: Callable[[], int], test: Callable[[int], bool], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while not test(value := read()):
        assert time.monotonic() < deadline, value
        time.sleep(0.2)
    return value


def chromium_path() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is missing: scripts/test installs it (apt chromium)"
    return chromium


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


def test_page_shows_the_story_growing_and_the_mood_changing(
    browser: Browser, running: Appliance
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(f"http://127.0.0.1:{running.port}/")
    # Waits go through locators: the page's CSP forbids the eval behind wait_for_function.
    expect(page.locator("#connection")).to_have_text("live", timeout=15_000)

    # Happy first (the replay's first picture).
    expect(page.locator("#mood-label")).to_have_text("happy", timeout=30_000)
    story = page.locator("#story")
    first = wait_until(lambda: len(story.inner_text()), lambda n: n > 80)
    wait_until(lambda: len(story.inner_text()), lambda n: n > first + 40)

    # Then the sad face: the label changes and so do the bars.
    expect(page.locator("#mood-label")).to_have_text("sad", timeout=30_000)
    assert int(page.locator("#value-sad").inner_text().rstrip("%")) > 30
    assert page.locator("#use-camera").inner_text().startswith("replay")
    assert "WAV" in page.locator("#use-speech").inner_text()
    # A finished turn joins the list (on a loaded machine the first may still be going).
    wait_until(lambda: page.locator("#turns .turn").count(), lambda n: n >= 1)
    assert problems == []
    page.close()


def wait_for_played(voice: Locator, enough: int) -> list[int]:
    """The clips the page's audio element played, once there are ``enough``."""

    def played() -> list[int]:
        return [int(s) for s in (voice.get_attribute("data-played") or "").split(",") if s]

    wait_until(lambda: len(played()), lambda n: n >= enough)
    return played()


@pytest.fixture(scope="module")
def autoplaying_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium that plays sound without a tap (the test still taps Listen)."""
    launched = playwright.chromium.launch(
        executable_path=chromium_path(),
        args=[*CHROMIUM_FLAGS, "--autoplay-policy=no-user-gesture-required"],
    )
    yield launched
    launched.close()


@pytest.fixture
def listenable(tmp_path: Path) -> Iterator[Appliance]:
    """No sound device (this machine has none): the pages that listen are the speaker."""
    frames = replay_dir(tmp_path, HAPPY, SAD)
    settings = appliance_settings(tmp_path, frames, speech={"output": "auto"})
    appliance = Appliance(settings)
    appliance.start()
    try:
        yield appliance
    finally:
        appliance.shutdown()


def test_listen_plays_the_narration_in_order_on_the_page(
    autoplaying_browser: Browser, listenable: Appliance
) -> None:
    base = f"http://127.0.0.1:{listenable.port}"
    # Nobody listens yet: nothing is synthesized, the story keeps to a reader's pace.
    status = httpx.get(base + "/api/status", timeout=10).json()
    assert status["speech"]["mode"] == "text only"
    assert "tap Listen" in status["speech"]["summary"]
    page = autoplaying_browser.new_page(viewport={"width": 390, "height": 844})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    clips: list[tuple[int, str, int]] = []

    def on_response(response: Response) -> None:
        if "/api/audio/" in response.url:
            seq = int(response.url.rsplit("/", 1)[1].removesuffix(".wav"))
            clips.append((seq, response.headers.get("content-type", ""), len(response.body())))

    page.on("response", on_response)
    page.goto(base + "/")
    # A second phone listens too.
    other = autoplaying_browser.new_page(viewport={"width": 390, "height": 844})
    other.goto(base + "/")
    for each in (page, other):
        expect(each.locator("#connection")).to_have_text("live", timeout=15_000)
        each.locator("#btn-listen").click()
        expect(each.locator("#btn-listen")).to_have_text("Stop listening")
    # The audio element receives the sentences and plays them, in order, on both.
    for each, enough in ((page, 3), (other, 2)):
        played = wait_for_played(each.locator("#voice"), enough)
        assert played == sorted(played) and len(set(played)) == len(played)
    other.close()
    assert clips and all(kind == "audio/wav" and size > 10_000 for _, kind, size in clips)
    assert [seq for seq, _, _ in clips] == sorted(seq for seq, _, _ in clips)
    status = httpx.get(base + "/api/status", timeout=10).json()
    assert status["speech"]["mode"] == "on the page"
    assert status["speech"]["engine"] == "piper"
    # A page that does not listen gets no audio.
    quiet = httpx.get(base + "/api/audio/999999.wav", timeout=10)
    assert quiet.status_code == 404
    assert problems == []
    page.close()


def test_a_phone_that_falls_behind_skips_to_the_newest_sentence(
    autoplaying_browser: Browser, listenable: Appliance
) -> None:
    page = autoplaying_browser.new_page(viewport={"width": 390, "height": 844})
    # A slow phone: 16 kB/s, so a sentence's WAV (100-250 kB) takes longer to arrive than
    # to say, and the device is always a sentence or more ahead of it.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": 16_000, "uploadThroughput": 16_000},
    )
    page.goto(f"http://127.0.0.1:{listenable.port}/")
    expect(page.locator("#connection")).to_have_text("live", timeout=30_000)
    page.locator("#btn-listen").click()
    played = wait_for_played(page.locator("#voice"), 3)
    announced = [
        int(s)
        for s in (page.locator("#voice").get_attribute("data-announced") or "").split(",")
        if s
    ]
    # Still in order, never a sentence twice, and sentences announced but skipped: the phone
    # went on from the newest instead of playing every one late.
    assert played == sorted(played) and len(set(played)) == len(played)
    assert set(played) <= set(announced)
    assert set(announced[: announced.index(played[-1])]) - set(played), (announced, played)
    page.close()
