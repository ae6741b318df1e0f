"""``moodtale bench story``: load time, cold and warm time to first token, token rate
through the engine and directly through llama-cpp-python, peak memory."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.bench.machine import machine_summary, package_version, peak_rss_mb
from appliance.commands.story import mood_for
from appliance.events import EMOTION_LABELS
from appliance.story.backends import StoryBackends
from appliance.story.llama_backend import LlamaBackend
from appliance.story.llm import GenerationRequest
from appliance.story.prompts import instruction_for
from appliance.story.settings import StorySettings
from appliance.story.store import StoryStore
from appliance.story.storyteller import FinishedTurn, Storyteller

MOODS = [label for label in EMOTION_LABELS if label != "disgust"]


def raw_rate(backend: LlamaBackend, request: GenerationRequest) -> tuple[float, int]:
    """Tokens/s of the same prompt straight through llama-cpp-python: no thread hand-off,
    no guards, no constraint; in the model's own thread (it is not thread-safe)."""

    def run(llm: Any) -> tuple[float, int]:
        tokens = backend.prompt_tokens(request.messages)
        started = time.perf_counter()
        first = 0.0
        chunks = llm.create_completion(
            tokens,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=backend.settings.top_p,
            min_p=backend.settings.min_p,
            repeat_penalty=backend.settings.repeat_penalty,
            seed=request.seed or 0,
            stream=True,
        )
        for _chunk in chunks:
            if not first:
                first = time.perf_counter() - started
        generated = max(0, llm.n_tokens - len(tokens) + 1)
        elapsed = time.perf_counter() - started - first
        return (generated / elapsed if elapsed > 0 else 0.0), generated

    return backend.call(run)


def run_story_bench(story: StorySettings, models_dir: Path, turns: int) -> dict[str, Any]:
    local = LlamaBackend(story.llama, models_dir)
    verify_started = time.perf_counter()
    local.resolve_model_path()
    verify_s = time.perf_counter() - verify_started
    backends = StoryBackends(story, local, None)
    load_started = time.perf_counter()
    local.load()
    load_s = time.perf_counter() - load_started
    finished: list[FinishedTurn] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="moodtale-bench-") as tmp:
        store = StoryStore(Path(tmp) / "stories.sqlite3")
        teller = Storyteller(story, backends, store, n_ctx=story.llama.n_ctx)
        previous = None
        for index in range(turns):
            label = MOODS[index % len(MOODS)]
            turn = teller.next_turn(mood_for(label, previous))
            previous = label
            if turn is None:
                failed += 1
            else:
                finished.append(turn)
        calm = instruction_for(mood_for("neutral", None), story, teller.plan)
        last_request = teller.request_for(calm)
        engine_rate = statistics.mean(t.tokens_per_s for t in finished) if finished else 0.0
        raw = [raw_rate(local, last_request)[0] for _ in range(2)]
        store.close()
    backends.close()
    raw_tokens_per_s = max(raw)
    warm = [t.ttft_s for t in finished[1:] if t.record.attempts == 1]
    first_sentences = [t.first_sentence_s for t in finished[1:] if t.record.attempts == 1]
    # What a warm turn makes the model read before its first token (the rest is cached):
    # with a board's prompt-reading rate, its first-token time.
    read = [
        t.prompt_tokens - t.cached_prompt_tokens for t in finished[1:] if t.record.attempts == 1
    ]
    return {
        "model": local.chosen_model,
        "turns": turns,
        "turns_failed": failed,
        "verify_s": round(verify_s, 3),
        "load_s": round(load_s, 3),
        "ttft_cold_ms": round(finished[0].ttft_s * 1000, 1) if finished else None,
        "ttft_warm_ms": round(statistics.median(warm) * 1000, 1) if warm else None,
        "ttft_warm_ms_max": round(max(warm) * 1000, 1) if warm else None,
        "first_sentence_warm_ms": (
            round(statistics.median(first_sentences) * 1000, 1) if first_sentences else None
        ),
        "prompt_tokens_read_warm": round(statistics.median(read)) if read else None,
        "tokens_per_s": round(engine_rate, 2),
        "raw_tokens_per_s": round(raw_tokens_per_s, 2),
        "overhead_ratio": round(engine_rate / raw_tokens_per_s, 3) if raw_tokens_per_s else None,
        "rss_mb": round(peak_rss_mb(), 1),
        "threads": story.llama.threads or machine_summary()["cores"],
        "n_ctx": story.llama.n_ctx,
        "llama_cpp_python": package_version("llama-cpp-python"),
        **machine_summary(),
    }


def describe_story_bench(result: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        value = result.get(key)
        return f"{value:.0f} ms" if isinstance(value, int | float) else "n/a"

    return "\n".join(
        [
            f"story benchmark: {result['model']}, {result['turns']} turns "
            f"({result['turns_failed']} given up), n_ctx {result['n_ctx']}, "
            f"{result['threads']} threads, llama-cpp-python {result['llama_cpp_python']}",
            f"  machine: {result['cpu']}, {result['cores']} cores, {result['arch']}, "
            f"Python {result['python']}",
            f"  verify sha256     {result['verify_s']:.2f} s",
            f"  load              {result['load_s']:.2f} s",
            f"  first token cold  {ms('ttft_cold_ms')}",
            f"  first token warm  {ms('ttft_warm_ms')} (median; worst {ms('ttft_warm_ms_max')})",
            f"  first sentence    {ms('first_sentence_warm_ms')} (warm, median)",
            f"  prompt read warm  {result.get('prompt_tokens_read_warm') or 'n/a'} tokens "
            "(median; the rest was cached)",
            f"  engine            {result['tokens_per_s']:.1f} tokens/s",
            f"  llama-cpp-python  {result['raw_tokens_per_s']:.1f} tokens/s (same prompt, direct)",
            f"  ratio             {result['overhead_ratio']}",
            f"  peak RSS          {result['rss_mb']:.0f} MB",
        ]
    )
