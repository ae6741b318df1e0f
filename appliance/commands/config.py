"""``moodtale config``."""

from __future__ import annotations

import argparse

from appliance.commands import EXIT_OK, Subparsers
from appliance.settings import Settings, settings_as_toml


def register(commands: Subparsers) -> None:
    config = commands.add_parser(
        "config", help="print the effective settings as TOML (secrets masked)"
    )
    config.set_defaults(handler=print_config)


def print_config(settings: Settings, args: argparse.Namespace) -> int:
    print(settings_as_toml(settings), end="")
    return EXIT_OK
