"""The ``moodtale`` command."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from appliance.commands import EXIT_SETUP, bench, config, doctor, fleet, models, perception, story
from appliance.model_files import ModelFileError
from appliance.repeated_logs import hold_back_repeats
from appliance.settings import SERVICE_USER, ConfigError, load_settings
from appliance.vision.litert import LiteRTUnavailableError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moodtale", description="A story that changes as its reader reacts."
    )
    parser.add_argument(
        "--config", type=Path, help="TOML settings file (default: /etc/moodtale/moodtale.toml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (perception, story, models, bench, config, doctor, fleet):
        module.register(commands)
    return parser


def _setup_logging(level: str, command: str) -> None:
    # The appliance logs to stdout (journald); commands whose stdout is their output
    # (a story, JSON lines) log to stderr so the two never mix.
    logging.basicConfig(
        stream=sys.stdout if command in ("run", "watch") else sys.stderr,
        level=level,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    hold_back_repeats()


def as_service_user(argv: Sequence[str]) -> str:
    """The exact command that runs ``argv`` as the service user."""
    installed = Path(sys.executable).with_name("moodtale")
    program = str(installed) if installed.is_file() else "moodtale"
    return shlex.join(["sudo", "-u", SERVICE_USER, program, *argv])


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(given)
    except PermissionError as exc:
        # An installed device's settings and state are the service user's: say how to
        # run it as that user, in a line, instead of a traceback.
        what = exc.filename or "a file it needs"
        print(
            f"moodtale: {what}: permission denied. On an installed device, run it as the "
            f"service user: {as_service_user(given)}",
            file=sys.stderr,
        )
        return EXIT_SETUP


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        # One line per problem, whole: journald shows each line as its own entry.
        for problem in str(exc).splitlines():
            print(f"moodtale: bad configuration: {problem}", file=sys.stderr)
        return EXIT_SETUP
    _setup_logging(settings.log_level, args.command)
    try:
        result: int = args.handler(settings, args)
    except (ModelFileError, LiteRTUnavailableError) as exc:
        print(f"moodtale: {exc}", file=sys.stderr)
        return EXIT_SETUP
    return result
