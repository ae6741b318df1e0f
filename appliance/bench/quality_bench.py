"""``moodtale bench quality``: the engine through a scripted sequence of moods, judged.

Every label, shifts, a long calm spell (boredom), a reader who leaves and comes back.
Each turn is judged by the quality gate's checks and for whether it answers its mood (a
smile, a frown or fear: not negative by an independent lexicon-based sentiment scorer,
VADER; a calm or absent reader: the story moves on); the whole told
story by the figures of ``whole_story`` (lectures, echoes, motifs, same openings, foreign
letters, the cast kept, episodes ended, beats followed). After ``turns`` the episode in
progress is told to its end, so every episode begun is judged whole.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from appliance.bench.machine import machine_summary, package_version, peak_rss_mb
from appliance.commands.story import mood_for
from appliance.story.backends import StoryBackends
from appliance.story.guards import CastCheck, words
from appliance.story.llama_backend import LlamaBackend
from appliance.story.plan.planner import StoryPlan
from appliance.story.prompts import story_rules
from appliance.story.quality import answers_mood, novelty, sentiment_ok, turn_problems
from appliance.story.settings import StorySettings
from appliance.story.store import StoryStore
from appliance.story.storyteller import StoryPausedError, Storyteller, cast_check
from appliance.story.whole_story import story_figures

SCRIPT = (
    "happy",
    "happy",
    "sad",
    "sad",
    "fear",
    "surprise",
    "angry",
    "disgust",
    "neutral",
    "neutral",
    "neutral",
    "neutral",
    "neutral",
    "away",
    "away",
    "happy",
)
"""A reader's moods, one per turn, repeated: every label, shifts, a calm spell long
enough to count as boredom, and a reader who looks away twice and comes back."""


def scripted_moods(turns: int) -> list[str]:
    return [SCRIPT[i % len(SCRIPT)] for i in range(turns)]


def run_quality_bench(
    story: StorySettings, models_dir: Path, turns: int, out: Path | None = None
) -> dict[str, Any]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    local = LlamaBackend(story.llama, models_dir)
    backends = StoryBackends(story, local, None)
    local.load()
    records: list[dict[str, Any]] = []
    broken: Counter[str] = Counter()
    texts: list[str] = []
    warm_ttft: list[float] = []
    turn_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="moodtale-quality-") as tmp:
        store = StoryStore(Path(tmp) / "stories.sqlite3")
        teller = Storyteller(story, backends, store, n_ctx=story.llama.n_ctx)
        previous: str | None = None
        for index, label in enumerate(scripted_moods(turns + story.episode_turns)):
            if index >= turns and teller.plan.turns_told == 0:
                break  # the episode in progress has ended
            if previous == "away" and label != "away":
                teller.reader_returned()
            started = time.perf_counter()
            try:
                finished = teller.next_turn(mood_for(label, previous))
            except StoryPausedError:
                finished = None
            turn_s.append(time.perf_counter() - started)
            previous = label
            if finished is None:
                broken["given_up"] += 1
                records.append({"mood": label, "instruction": None, "text": None})
                continue
            record = finished.record
            problems = turn_problems(
                record.text, texts, (story_rules(story),), teller.context.cast_check
            )
            broken.update(problems)
            score = vader.polarity_scores(record.text)["compound"]
            new = novelty(record.text, texts)
            if index > 0 and record.attempts == 1:
                warm_ttft.append(finished.ttft_s)
            records.append(
                {
                    "mood": label,
                    "answered": record.mood_label,
                    "instruction": record.instruction,
                    "text": record.text,
                    "novelty": round(new, 3),
                    "sentiment": score,
                    "adherent": answers_mood(record.mood_label, record.beat, score),
                    "tone_vader": sentiment_ok(record.mood_label, score),
                    "attempts": record.attempts,
                    "beat": record.beat,
                    "problems": problems,
                    "turn_s": round(turn_s[-1], 3),
                }
            )
            texts.append(record.text)
        guard_counts = dict(teller.guard_counts)
        plan = teller.plan
        check = cast_check(plan, teller.parts)
        world = [w for w in teller.parts.worlds if w.name == plan.world]
        places = [p for w in world for p in w.places] + plan.places
        store.close()
    backends.close()
    if out is not None:
        out.write_text("".join(json.dumps(r) + "\n" for r in records))
    told = [r for r in records if r["text"] is not None]
    novelties = [r["novelty"] for r in told]
    return {
        "model": local.chosen_model,
        "turns": turns,
        "turns_told": len(told),
        "hero": f"{plan.hero.name} the {plan.hero.kind}",
        **whole_story_figures(told, plan, check, places),
        "broken": sum(1 for r in records if r["text"] is None or r["problems"]),
        "broken_by_reason": dict(broken),
        "novelty_mean": round(statistics.mean(novelties), 3) if novelties else 0.0,
        "novelty_min": round(min(novelties), 3) if novelties else 0.0,
        "adherence": round(sum(r["adherent"] for r in told) / len(told), 3) if told else 0.0,
        "tone_vader": round(sum(r["tone_vader"] for r in told) / len(told), 3) if told else 0.0,
        "turn_s_mean": round(statistics.mean(turn_s), 3),
        "ttft_warm_ms": round(statistics.median(warm_ttft) * 1000, 1) if warm_ttft else None,
        "tries_mean": round(statistics.mean(r["attempts"] for r in told), 2) if told else 0.0,
        "guard_rejections": guard_counts,
        "temperature": story.llama.temperature,
        "rss_mb": round(peak_rss_mb(), 1),
        "llama_cpp_python": package_version("llama-cpp-python"),
        **machine_summary(),
    }


def whole_story_figures(
    told: list[dict[str, Any]], plan: StoryPlan, check: CastCheck, places: list[str]
) -> dict[str, Any]:
    """The told story's figures; the plan's named things (the cast's names and kinds, the
    world's places, the episode's treasure and goal) are not content words: a story rightly
    says them again and again."""
    names = {w for c in plan.cast for w in (*c.name.lower().split(), *c.kind.lower().split())}
    names |= {w for place in (*places, plan.home) for w in place.lower().split()}
    cast_and_places = frozenset(names | {f"{w}s" for w in names})
    # The treasure and the goal are what an episode is about ("the strange noise").
    names |= set(words(" ".join(str(r["beat"].get("treasure", "")) for r in told)))
    names |= set(words(" ".join(str(r["beat"].get("goal", "")) for r in told)))
    figures = story_figures(
        [(r["text"], r["beat"]) for r in told],
        check,
        plan.hero.name,
        frozenset(names),
        turn_names=cast_and_places,
    )
    return dataclasses.asdict(figures)


def describe_quality_bench(result: dict[str, Any]) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in result["broken_by_reason"].items()) or "none"
    rejections = ", ".join(f"{k} {v}" for k, v in result["guard_rejections"].items()) or "none"
    ttft = result["ttft_warm_ms"]
    return "\n".join(
        [
            f"quality benchmark: {result['model']}, {result['turns']} turns, "
            f"temperature {result['temperature']}",
            f"  machine: {result['cpu']}, {result['cores']} cores, {result['arch']}",
            f"  told              {result['turns_told']} turns, hero {result['hero']}",
            f"  broken turns      {result['broken']} ({reasons})",
            f"  lecture           {result['lecture']:.3f} of sentences",
            f"  echo3             {result['echo3']:.3f}",
            f"  motif_max         {result['motif_max']:.2f} per 10 turns "
            f"({result['motif'] or 'none'})",
            f"  rehash            {result['rehash']:.3f} of sentences",
            f"  same_start        {result['same_start']:.3f}",
            f"  foreign           {result['foreign']} turns",
            f"  cast_kept         {'yes' if result['cast_kept'] else 'no'}"
            + "".join(f"\n    {s}" for s in result["cast_problems"][:3]),
            f"  episodes_ended    {result['episodes_ended']} of {result['episodes_begun']}",
            f"  beats_followed    {result['beats_followed'] * 100:.0f}%",
            f"  novelty           mean {result['novelty_mean']:.3f}, "
            f"min {result['novelty_min']:.3f}",
            f"  mood adherence    {result['adherence'] * 100:.0f}% "
            f"(tone by VADER alone {result['tone_vader'] * 100:.0f}%)",
            f"  turn time         {result['turn_s_mean']:.2f} s mean "
            f"({result['tries_mean']:.2f} tries per turn)",
            f"  first token warm  {ttft:.0f} ms" if ttft is not None else "  first token warm  n/a",
            f"  guard rejections  {rejections}",
        ]
    )
