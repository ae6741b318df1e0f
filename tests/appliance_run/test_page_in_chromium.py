"""The page in a real headless browser (Debian's chromium, driven by Playwright): the
story grows as it is written, the mood changes when the replayed face does, and the page
logs no errors."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, expect, sync_playwright

from appliance.daemon import Appliance

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is missing: scripts/test installs it (apt chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
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
