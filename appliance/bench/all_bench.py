"""``moodtale bench all``: the perception, story, speech and latency benchmarks in one go,
and one report of them, with the device they ran on (a Raspberry Pi's model, its memory
and its OS), for an owner to send in. A benchmark that fails is recorded with its error;
the others still run."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.bench.machine import machine_summary
from appliance.model_files import ModelFileError
from appliance.settings import Settings

log = logging.getLogger(__name__)

BENCHES = ("perception", "story", "speech", "latency")


# frames, story turns, spoken turns, latency runs: each benchmark's default, or a quick pass.
SIZES = {False: (300, 8, 6, 10), True: (60, 2, 1, 2)}


@dataclass(frozen=True)
class AllOptions:
    """How much each benchmark does: the defaults of each, or a quick pass."""

    model: str | None = None
    quick: bool = False

    @property
    def frames(self) -> int:
        return SIZES[self.quick][0]

    @property
    def story_turns(self) -> int:
        return SIZES[self.quick][1]

    @property
    def speech_turns(self) -> int:
        return SIZES[self.quick][2]

    @property
    def latency_runs(self) -> int:
        return SIZES[self.quick][3]


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return ""


def device_summary() -> dict[str, Any]:
    """The machine as a Pi owner would name it: the board (from the device tree), memory,
    the OS release, beside the CPU, cores and Python every benchmark prints."""
    memory_kb = 0
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    os_name = ""
    for line in read_text("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_name = line.partition("=")[2].strip('"')
    return {
        **machine_summary(),
        "board": read_text("/proc/device-tree/model") or "not a device-tree board",
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "os": os_name or platform.platform(),
        "kernel": platform.release(),
    }


def bench_perception(settings: Settings, options: AllOptions) -> dict[str, Any]:
    from appliance.bench.perception_bench import BenchOptions, run_perception_bench
    from appliance.vision import build_perception

    perception = build_perception(settings.vision, settings.models_dir)
    result = run_perception_bench(perception, BenchOptions(frames=options.frames, faces=1))
    return {**result, "detector": settings.vision.detector, "threads": settings.vision.threads}


def bench_story(settings: Settings, options: AllOptions) -> dict[str, Any]:
    from appliance.bench.repeatable import repeatable_story
    from appliance.bench.story_bench import run_story_bench

    story = repeatable_story(settings.story, options.model)
    return run_story_bench(story, settings.models_dir, options.story_turns)


def bench_speech(settings: Settings, options: AllOptions) -> dict[str, Any]:
    from appliance.bench.speech_bench import run_speech_bench

    return run_speech_bench("auto", options.speech_turns, speech=settings.speech)


def bench_latency(settings: Settings, options: AllOptions) -> dict[str, Any]:
    from appliance.bench.latency_bench import run_latency_bench

    return run_latency_bench(settings, options.latency_runs, model=options.model, listen=True)


RUNNERS: dict[str, Callable[[Settings, AllOptions], dict[str, Any]]] = {
    "perception": bench_perception,
    "story": bench_story,
    "speech": bench_speech,
    "latency": bench_latency,
}


def run_all_benches(
    settings: Settings, options: AllOptions, progress: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """Every benchmark in turn; each result under its name, each failure under errors."""
    report: dict[str, Any] = {
        "moodtale": __version__,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": options.quick,
        "model": options.model or settings.story.llama.model,
        "device": device_summary(),
        "benches": {},
        "seconds": {},
        "errors": {},
    }
    model_missing = ""
    for name in BENCHES:
        if name == "latency" and model_missing:
            # The whole appliance would wait for a story that cannot be told.
            report["errors"][name] = f"not run: the story model cannot be loaded ({model_missing})"
            report["seconds"][name] = 0.0
            continue
        progress(f"bench all: {name} ...")
        started = time.monotonic()
        try:
            report["benches"][name] = RUNNERS[name](settings, options)
        except ModelFileError as exc:
            if name == "story":
                model_missing = str(exc)
            report["errors"][name] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # one benchmark failing must not lose the others
            log.exception("bench all: %s failed", name)
            report["errors"][name] = f"{type(exc).__name__}: {str(exc)[:500]}"
        report["seconds"][name] = round(time.monotonic() - started, 1)
    return report


def describe_all_benches(report: dict[str, Any], out: Path | None) -> str:
    """A few lines a person reads; the file holds everything."""
    from appliance.bench.latency_bench import describe_latency_bench
    from appliance.bench.perception_bench import describe_perception_bench
    from appliance.bench.speech_bench import describe_speech_bench
    from appliance.bench.story_bench import describe_story_bench

    device = report["device"]
    lines = [
        f"moodtale bench all ({'quick' if report['quick'] else 'full'}) on {device['board']}: "
        f"{device['cpu']}, {device['cores']} cores, {device['memory_gb']} GB, {device['os']}, "
        f"Python {device['python']}"
    ]
    benches = report["benches"]
    for name in BENCHES:
        seconds = report["seconds"].get(name, 0)
        if name in report["errors"]:
            lines.append(f"\n[{name}] FAILED after {seconds} s: {report['errors'][name]}")
            continue
        result = benches[name]
        if name == "perception":
            text = describe_perception_bench(result, result["detector"], result["threads"])
        elif name == "story":
            text = describe_story_bench(result)
        elif name == "speech":
            text = describe_speech_bench(result)
        else:
            text = describe_latency_bench(result)
        lines.append(f"\n[{name}] ({seconds} s)\n{text}")
    if out is not None:
        lines.append(f"\nThe whole report: {out}")
    return "\n".join(lines)
