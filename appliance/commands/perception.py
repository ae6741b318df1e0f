"""``moodtale run`` (the appliance), ``moodtale watch`` and ``moodtale analyze``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from appliance.commands import EXIT_FAILED, EXIT_OK, EXIT_SETUP, Subparsers
from appliance.settings import Settings


def register(commands: Subparsers) -> None:
    run = commands.add_parser(
        "run", help="run the appliance: camera, mood, story, narration and the web page"
    )
    run.set_defaults(handler=run_appliance)
    watch = commands.add_parser(
        "watch", help="perception only: print each face's expression as it changes"
    )
    watch.set_defaults(handler=run_live)
    analyze = commands.add_parser("analyze", help="faces and expressions in image files")
    analyze.add_argument("--json", action="store_true", help="one JSON object per line per image")
    analyze.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="images or folders")
    analyze.set_defaults(handler=analyze_images)


def run_appliance(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.daemon import run_appliance as run
    from appliance.startup_checks import startup_problems

    if problems := startup_problems(settings):
        for problem in problems:
            print(f"moodtale: bad configuration: {problem}", file=sys.stderr)
        return EXIT_SETUP
    return run(settings)


def run_live(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.live_perception import run_live_perception
    from appliance.supervision import stop_on_signals
    from appliance.vision import build_perception

    perception = build_perception(settings.vision, settings.models_dir, azure=settings.azure)
    stop = threading.Event()
    stop_on_signals(stop)
    return run_live_perception(settings, perception, stop, emit=lambda s: print(s, flush=True))


def analyze_images(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.analyze import ImageAnalysis, analyze_image, describe, expand_paths
    from appliance.vision import build_perception

    perception = build_perception(settings.vision, settings.models_dir, azure=settings.azure)
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
