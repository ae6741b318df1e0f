"""``moodtale story list|show|new|export|next``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.commands import EXIT_FAILED, EXIT_OK, Subparsers, whole_number_arg
from appliance.events import EMOTION_LABELS, Emotions, Mood, StoryEvent
from appliance.settings import Settings

if TYPE_CHECKING:
    from appliance.story.store import StoryStore

MOOD_CHOICES = (*EMOTION_LABELS, "away")


def register(commands: Subparsers) -> None:
    story = commands.add_parser("story", help="the stories the device has told")
    actions = story.add_subparsers(dest="story_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="every story, newest last").set_defaults(handler=list_stories)
    show = actions.add_parser("show", help="a story as text (default: the current one)")
    show.add_argument("id", nargs="?", type=int, help="story number")
    show.set_defaults(handler=show_story)
    actions.add_parser("new", help="end the current story and start a new one").set_defaults(
        handler=new_story
    )
    export = actions.add_parser("export", help="a story as Markdown or JSON")
    export.add_argument("id", nargs="?", type=int, help="story number (default: the current one)")
    export.add_argument("--format", choices=("md", "json"), default="md")
    export.add_argument("--out", type=Path, help="write to this file instead of stdout")
    export.set_defaults(handler=export_story)
    next_turn = actions.add_parser(
        "next", help="tell the next turn(s) of the current story for a given mood"
    )
    next_turn.add_argument("--mood", choices=MOOD_CHOICES, default="neutral")
    next_turn.add_argument("--turns", type=whole_number_arg(1), default=1)
    next_turn.set_defaults(handler=tell_next)


def _store(settings: Settings) -> StoryStore:
    from appliance.story import open_store

    return open_store(settings.state_dir)


def _story_id(store: StoryStore, wanted: int | None) -> int | None:
    story = store.story(wanted) if wanted is not None else store.current_story()
    if story is None:
        print(
            f"moodtale: no story {wanted}" if wanted is not None else "moodtale: no story yet",
            file=sys.stderr,
        )
        return None
    return story.id


def list_stories(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings)
    for story in store.stories():
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(story.created_at))
        state = "ended" if story.ended else "current"
        turns = store.turns(story.id)
        opening = turns[0].text[:60] + "..." if turns else "(no turns yet)"
        print(f"{story.id:4}  {started}  {state:7}  {story.turn_count:4} turns  {opening}")
    store.close()
    return EXIT_OK


def show_story(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings)
    try:
        story_id = _story_id(store, args.id)
        if story_id is None:
            return EXIT_FAILED
        print(store.export_markdown(story_id))
    finally:
        store.close()
    return EXIT_OK


def new_story(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.story.plan.parts import load_parts
    from appliance.story.storyteller import begin_story

    store = _store(settings)
    story = begin_story(store, settings.story, load_parts(settings.story.parts_file))
    store.close()
    print(f"story {story.id} started")
    return EXIT_OK


def export_story(settings: Settings, args: argparse.Namespace) -> int:
    store = _store(settings)
    try:
        story_id = _story_id(store, args.id)
        if story_id is None:
            return EXIT_FAILED
        if args.format == "json":
            text = json.dumps(store.export_json(story_id), indent=2) + "\n"
        else:
            text = store.export_markdown(story_id)
    finally:
        store.close()
    if args.out:
        args.out.write_text(text)
        print(f"story {story_id} written to {args.out}")
    else:
        print(text, end="")
    return EXIT_OK


def mood_for(label: str, previous: str | None) -> Mood:
    """A clear, steady reading of ``label`` (``away``: nobody looking)."""
    emotions = Emotions.from_mapping({"neutral" if label == "away" else label: 1.0})
    return Mood(
        emotions=emotions,
        dominant=emotions.dominant,
        confidence=1.0,
        faces=0 if label == "away" else 1,
        engaged=label != "away",
        shift=previous is not None and previous != label,
        t=time.monotonic(),
    )


def tell_next(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.story import StoryPausedError, Storyteller, build_backends, open_store

    def show(event: StoryEvent) -> None:
        if event.kind == "token":
            print(event.text, end="", flush=True)
        elif event.kind == "turn_finished":
            print(flush=True)
        elif event.kind == "status":
            print(f"[{event.status.get('message', '')}]", file=sys.stderr, flush=True)

    store = open_store(settings.state_dir)
    backends = build_backends(settings.story, settings.azure, settings.models_dir, emit=show)
    status = EXIT_OK
    try:
        teller = Storyteller(
            settings.story, backends, store, n_ctx=settings.story.llama.n_ctx, emit=show
        )
        previous = None
        for _ in range(args.turns):
            try:
                finished = teller.next_turn(mood_for(args.mood, previous))
            except StoryPausedError as exc:
                print(f"moodtale: the story is paused: {exc}", file=sys.stderr)
                return EXIT_FAILED
            if finished is None:
                status = EXIT_FAILED
            previous = args.mood
    finally:
        backends.close()
        store.close()
    return status
