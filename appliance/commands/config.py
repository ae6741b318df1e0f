"""``moodtale config``."""

from __future__ import annotations

import argparse

from appliance.commands import EXIT_OK, Subparsers
from appliance.settings import Settings, settings_as_toml


def register(commands: Subparsers) -> None:
    config = commands.add_parser(
        "config", help="print the effective settings as TOML (secrets masked)"
    )
    config.add_argument(
        "--commented",
        action="store_true",
        help="every setting commented out (a settings file that changes nothing yet: what "
        "scripts/install-pi writes to /etc/moodtale/moodtale.toml)",
    )
    config.set_defaults(handler=print_config)


def commented_out(toml: str) -> str:
    """Every line a comment: keys and tables become ``# key = value``."""
    lines = (line if not line or line.startswith("#") else f"# {line}" for line in toml.split("\n"))
    return "\n".join(lines)


def print_config(settings: Settings, args: argparse.Namespace) -> int:
    text = settings_as_toml(settings)
    if args.commented:
        text = (
            "# Moodtale settings: every one with its default, commented out. Uncomment and\n"
            "# change what you need, then: sudo systemctl restart moodtale\n" + commented_out(text)
        )
    print(text, end="")
    return EXIT_OK
