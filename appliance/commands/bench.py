"""``moodtale bench perception|story|quality|latency|speech|soak|fleet``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.commands import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SETUP,
    Subparsers,
    size_arg,
    whole_number_arg,
)
from appliance.settings import Settings
from appliance.story.settings import StorySettings


def register(commands: Subparsers) -> None:
    bench = commands.add_parser("bench", help="measure performance")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    perception = benches.add_parser("perception", help="end-to-end perception on replayed frames")
    perception.add_argument("--json", action="store_true", help="print one JSON object")
    perception.add_argument("--frames", type=whole_number_arg(1), default=300, help="frames")
    perception.add_argument("--faces", type=whole_number_arg(0), default=1, help="faces per frame")
    perception.add_argument("--size", type=size_arg, default=(640, 480), help="frame size WxH")
    perception.set_defaults(handler=bench_perception)
    story = benches.add_parser("story", help="story model: load, first token, token rate")
    story.add_argument("--json", action="store_true", help="print one JSON object")
    story.add_argument("--model", help="model name or .gguf path (default: story.llama.model)")
    story.add_argument("--turns", type=whole_number_arg(2), default=8, help="turns to tell")
    story.set_defaults(handler=bench_story)
    quality = benches.add_parser("quality", help="story quality over a scripted sequence of moods")
    quality.add_argument("--json", action="store_true", help="print one JSON object")
    quality.add_argument("--model", help="model name or .gguf path (default: story.llama.model)")
    quality.add_argument("--turns", type=whole_number_arg(1), default=30, help="turns to tell")
    quality.add_argument("--out", type=Path, help="write every turn as a JSON line to this file")
    quality.set_defaults(handler=bench_quality)
    latency = benches.add_parser(
        "latency", help="the whole appliance: new expression to mood, first token, first audio"
    )
    latency.add_argument("--json", action="store_true", help="print one JSON object")
    latency.add_argument("--model", help="model name or .gguf path (default: story.llama.model)")
    latency.add_argument("--runs", type=whole_number_arg(1), default=10, help="switches")
    latency.add_argument(
        "--flat-out",
        action="store_true",
        help="let the story run as fast as WAV files are written, never waiting for a "
        "listener (the hardest case; by default it keeps to story.reading_wpm, as the "
        "appliance does with no sound device)",
    )
    latency.set_defaults(handler=bench_latency)
    speech = benches.add_parser(
        "speech", help="the voice: time to first audio, real-time factor, gaps in a turn"
    )
    speech.add_argument("--json", action="store_true", help="print one JSON object")
    speech.add_argument(
        "--engine",
        choices=["auto", "piper", "espeak"],
        default="auto",
        help="the voice to measure (default: auto, as the appliance chooses)",
    )
    speech.add_argument(
        "--turns", type=whole_number_arg(1, 6), default=6, help="turns of the fixed story (1-6)"
    )
    speech.set_defaults(handler=bench_speech)
    soak = benches.add_parser(
        "soak", help="the whole appliance for N minutes: restarts, errors, memory, descriptors"
    )
    soak.add_argument("--json", action="store_true", help="print one JSON object")
    soak.add_argument("--model", help="model name or .gguf path (default: story.llama.model)")
    soak.add_argument(
        "--minutes", type=positive_minutes, required=True, help="how long, after warm-up"
    )
    soak.set_defaults(handler=bench_soak)
    _register_fleet(benches)
    every = benches.add_parser(
        "all",
        help="perception, story, speech and latency in one go, and one report of them",
    )
    every.add_argument("--json", action="store_true", help="print the report as one JSON object")
    every.add_argument("--model", help="model name or .gguf path (default: story.llama.model)")
    every.add_argument(
        "--quick", action="store_true", help="a few frames, turns and runs of each (minutes less)"
    )
    every.add_argument(
        "--out",
        type=Path,
        help="write the report (JSON) here too (default: moodtale-bench-HOST-DATE.json)",
    )
    every.set_defaults(handler=bench_all)


def bench_perception(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.bench.perception_bench import (
        BenchOptions,
        describe_perception_bench,
        run_perception_bench,
    )
    from appliance.vision import build_perception

    vision = settings.vision
    if args.faces > vision.max_faces:
        vision = vision.model_copy(update={"max_faces": args.faces})
    perception = build_perception(vision, settings.models_dir)
    width, height = args.size
    options = BenchOptions(frames=args.frames, faces=args.faces, width=width, height=height)
    result = run_perception_bench(perception, options)
    result["detector"] = vision.detector
    result["threads"] = vision.threads
    if args.json:
        print(json.dumps(result))
    else:
        print(describe_perception_bench(result, vision.detector, vision.threads))
    return EXIT_OK


def bench_settings(settings: Settings, model: str | None) -> StorySettings:
    from appliance.bench.repeatable import repeatable_story

    return repeatable_story(settings.story, model)


def bench_story(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.bench.story_bench import describe_story_bench, run_story_bench

    story = bench_settings(settings, args.model)
    result = run_story_bench(story, settings.models_dir, args.turns)
    print(json.dumps(result) if args.json else describe_story_bench(result))
    return EXIT_OK


def bench_quality(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.bench.quality_bench import describe_quality_bench, run_quality_bench

    story = bench_settings(settings, args.model)
    result = run_quality_bench(story, settings.models_dir, args.turns, args.out)
    print(json.dumps(result) if args.json else describe_quality_bench(result))
    return EXIT_OK


def bench_latency(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.bench.latency_bench import describe_latency_bench, run_latency_bench

    result = run_latency_bench(settings, args.runs, model=args.model, listen=not args.flat_out)
    print(json.dumps(result) if args.json else describe_latency_bench(result))
    return EXIT_OK if result["runs"] else EXIT_FAILED


def bench_speech(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.bench.speech_bench import describe_speech_bench, run_speech_bench

    result = run_speech_bench(args.engine, args.turns, speech=settings.speech)
    print(json.dumps(result) if args.json else describe_speech_bench(result))
    return EXIT_OK


def positive_minutes(text: str) -> float:
    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not 0 < minutes <= 24 * 60:
        raise argparse.ArgumentTypeError("minutes must be more than 0 and at most a day")
    return minutes


def bench_soak(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.bench.soak_bench import describe_soak_bench, run_soak_bench

    result = run_soak_bench(settings, args.minutes, model=args.model)
    print(json.dumps(result) if args.json else describe_soak_bench(result))
    return EXIT_OK


def _register_fleet(benches: Subparsers) -> None:
    fleet = benches.add_parser(
        "fleet", help="the fleet job over generated rows: throughput, batch latency, memory"
    )
    fleet.add_argument("--json", action="store_true", help="print one JSON object")
    fleet.add_argument("--venues", type=whole_number_arg(1), default=50, help="venues")
    fleet.add_argument("--devices", type=whole_number_arg(1), default=4, help="devices per venue")
    fleet.add_argument("--seconds", type=whole_number_arg(1), default=300, help="seconds of rows")
    fleet.add_argument(
        "--file-seconds",
        type=whole_number_arg(1),
        default=10,
        help="seconds of rows per device file (the publisher's fleet.rotate_s)",
    )
    fleet.add_argument("--window-s", type=whole_number_arg(1), default=10, help="window length")
    fleet.add_argument(
        "--watermark-s",
        type=whole_number_arg(0),
        help="how late a row may be (default: 10 s, or a file's span + 10 s when a period's "
        "files are split across batches; live: a file's span + the trigger + 5 s)",
    )
    fleet.add_argument(
        "--live",
        metavar="MINUTES",
        type=positive_minutes,
        help="run the job this long while the devices land files in real time; report "
        "what waits in the landing (--seconds is not used)",
    )
    fleet.add_argument(
        "--trigger-s",
        type=whole_number_arg(1),
        help="each micro-batch reads what the devices land in this many seconds "
        "(default: --file-seconds, one file from every device)",
    )
    fleet.add_argument(
        "--master", help="Spark master URL, e.g. spark://HOST:7077 (default local[2])"
    )
    fleet.add_argument(
        "--story",
        choices=("none", "local"),
        default="none",
        help="the story query's model: none (every turn put off: the query's own cost) or "
        "local (story.llama.model in each executor, rate-limited as in the job)",
    )
    fleet.set_defaults(handler=bench_fleet)


def bench_fleet(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.bench.fleet_bench import FleetShape, describe_fleet_bench, run_fleet_bench
    from appliance.fleet.venue_llm import VenueLLMConfig

    shape = FleetShape(
        venues=args.venues,
        devices=args.devices,
        seconds=args.seconds,
        file_seconds=args.file_seconds,
        window_s=args.window_s,
        watermark_s=args.watermark_s,
        trigger_s=args.trigger_s,
    )
    story = VenueLLMConfig(
        story=settings.story.model_dump(mode="json"),
        models_dir=str(settings.models_dir),
        backend=args.story,
    )
    if args.master and not args.master.startswith(("local", "spark://", "k8s://", "yarn")):
        print(
            f"moodtale bench fleet: --master {args.master}: not a Spark master URL "
            "(local[N], spark://HOST:PORT, k8s://..., yarn)",
            file=sys.stderr,
        )
        return EXIT_SETUP
    if args.live is not None:
        from appliance.bench.fleet_live import describe_live_fleet_bench, run_live_fleet_bench

        live = run_live_fleet_bench(shape, args.live, master=args.master, story=story)
        print(json.dumps(live) if args.json else describe_live_fleet_bench(live))
        return EXIT_OK
    problem = shape.problem()
    if problem is not None:
        print(f"moodtale bench fleet: {problem}", file=sys.stderr)
        return EXIT_SETUP
    result = run_fleet_bench(shape, master=args.master, story=story)
    print(json.dumps(result) if args.json else describe_fleet_bench(result))
    return EXIT_OK


def bench_all(settings: Settings, args: argparse.Namespace) -> int:
    import socket
    import sys
    from datetime import datetime

    from appliance.bench.all_bench import AllOptions, describe_all_benches, run_all_benches

    out: Path = args.out or Path(
        f"moodtale-bench-{socket.gethostname()}-{datetime.now():%Y%m%d-%H%M%S}.json"
    )
    # Where the report goes is tried before minutes of benchmarks, not after.
    try:
        with out.open("a"):
            pass
    except OSError as exc:
        print(
            f"moodtale: bench all: cannot write the report to {out}: {exc.strerror}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    report = run_all_benches(
        settings,
        AllOptions(model=args.model, quick=args.quick),
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    saved: Path | None = out
    try:
        out.write_text(json.dumps(report, indent=1) + "\n")
    except OSError as exc:  # printed below all the same
        print(f"moodtale: bench all: cannot write {out}: {exc.strerror}", file=sys.stderr)
        saved = None
    print(json.dumps(report) if args.json else describe_all_benches(report, saved))
    if saved is None:
        return EXIT_FAILED
    return EXIT_FAILED if report["errors"] else EXIT_OK
