from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.story.llama_backend import LlamaBackend, LlamaSettings, available_memory
from appliance.story.llm import BackendError, ChatMessage, GenerationRequest, GenerationStats
from tests.story.conftest import smol_llama

QWEN_05B = "qwen2.5-coder-0.5b-instruct"

SYSTEM = ChatMessage("system", "You are a storyteller. Write short, gentle stories.")


def request(*messages: ChatMessage, max_tokens: int = 40) -> GenerationRequest:
    return GenerationRequest(
        messages=(SYSTEM, *messages), max_tokens=max_tokens, temperature=0.0, seed=42
    )


def run(backend: LlamaBackend, req: GenerationRequest) -> tuple[list[str], GenerationStats]:
    stats = GenerationStats()
    pieces = list(backend.stream(req, threading.Event(), stats))
    return pieces, stats


def test_streams_pieces_with_timings(smollm: LlamaBackend) -> None:
    pieces, stats = run(smollm, request(ChatMessage("user", "Tell me about a fox.")))
    assert len(pieces) > 5
    assert "".join(pieces).strip()
    assert stats.prompt_tokens == smollm.count_tokens(
        (SYSTEM, ChatMessage("user", "Tell me about a fox."))
    )
    assert 0 < stats.ttft_s <= stats.duration_s
    assert stats.completion_tokens > 5
    assert stats.tokens_per_s > 0


def test_same_seed_same_text(smollm: LlamaBackend) -> None:
    req = request(ChatMessage("user", "Tell me about a bear."))
    first, _ = run(smollm, req)
    second, _ = run(smollm, req)
    assert "".join(first) == "".join(second)


def test_cancel_stops_between_tokens_and_the_model_stays_usable(smollm: LlamaBackend) -> None:
    cancel = threading.Event()
    stats = GenerationStats()
    pieces = []
    for piece in smollm.stream(
        request(ChatMessage("user", "Tell a long story."), max_tokens=200), cancel, stats
    ):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert 3 <= len(pieces) <= 4
    after, _ = run(smollm, request(ChatMessage("user", "Tell me about an owl.")))
    assert "".join(after).strip()


def test_abandoning_the_stream_frees_the_model(smollm: LlamaBackend) -> None:
    stream = smollm.stream(
        request(ChatMessage("user", "Tell a long story."), max_tokens=200),
        threading.Event(),
        GenerationStats(),
    )
    next(stream)
    del stream  # dropping the generator closes it, as a caller that stops reading does
    started = time.monotonic()
    after, _ = run(smollm, request(ChatMessage("user", "Tell me about a cat.")))
    assert after
    assert time.monotonic() - started < 10


def test_the_next_turn_reuses_the_cached_prompt(smollm: LlamaBackend) -> None:
    """Each turn's prompt extends the last: only the new part is evaluated."""
    first_turn = (ChatMessage("user", "Begin a story about a fox."),)
    pieces, first = run(smollm, request(*first_turn))
    reply = ChatMessage("assistant", "".join(pieces).strip())
    _, second = run(smollm, request(*first_turn, reply, ChatMessage("user", "Go on.")))
    assert first.extra["cached_prompt_tokens"] < first.prompt_tokens
    # Everything up to the reply was cached; only the reply's end and "Go on." are new.
    assert second.extra["cached_prompt_tokens"] >= first.prompt_tokens
    assert second.prompt_tokens - second.extra["cached_prompt_tokens"] < 30


def test_a_summary_leaves_the_story_cache_in_place(smollm: LlamaBackend) -> None:
    """Folding old turns asks the model for a summary, with another prompt: the story's
    cache is put back afterwards, so the next turn does not re-read its whole prompt."""
    story = (ChatMessage("user", "Begin a story about a hedgehog who likes apples."),)
    pieces, first = run(smollm, request(*story))
    reply = ChatMessage("assistant", "".join(pieces).strip())
    turn = (*story, reply, ChatMessage("user", "Go on."))
    summary = GenerationRequest(
        messages=(ChatMessage("system", "You summarize."), ChatMessage("user", "A tale.")),
        max_tokens=20,
        temperature=0.0,
        purpose="summary",
    )
    run(smollm, summary)
    _, after_summary = run(smollm, request(*turn))
    assert after_summary.extra["cached_prompt_tokens"] >= first.prompt_tokens
    # Without keeping it, another prompt in between throws the story's cache away.
    run(smollm, replace(summary, purpose="turn"))
    _, after_other = run(smollm, request(*turn))
    assert after_other.extra["cached_prompt_tokens"] < 10


def test_a_warm_request_reads_the_prompt_and_writes_nothing(smollm: LlamaBackend) -> None:
    messages = (ChatMessage("user", "Tell me about a heron who lives by a lake."),)
    warm = replace(request(*messages), purpose="warm")
    pieces, stats = run(smollm, warm)
    assert pieces == []
    _, turn = run(smollm, request(*messages))
    assert turn.extra["cached_prompt_tokens"] >= turn.prompt_tokens - 1
    assert stats.prompt_tokens == turn.prompt_tokens


def test_a_cancelled_request_stops_before_reading_a_long_prompt(smollm: LlamaBackend) -> None:
    long = ChatMessage("user", "Once there was a quiet valley with a river. " * 60)
    cancel = threading.Event()
    cancel.set()
    stats = GenerationStats()
    assert list(smollm.stream(request(long), cancel, stats)) == []
    # Nothing was read past what was cached, and the model is fine afterwards.
    pieces, _ = run(smollm, request(ChatMessage("user", "Tell me about a mole.")))
    assert "".join(pieces).strip()


def test_a_prompt_beyond_the_window_is_refused(smollm: LlamaBackend) -> None:
    huge = ChatMessage("user", "tell me a story " * 400)
    with pytest.raises(BackendError, match="exceeds n_ctx"):
        run(smollm, request(huge))


def test_a_missing_model_says_how_to_fetch_it(tmp_path: Path) -> None:
    backend = LlamaBackend(smol_llama(), tmp_path)
    with pytest.raises(BackendError) as caught:
        backend.load()
    assert caught.value.broken
    assert "moodtale models fetch smollm2-135m-instruct" in str(caught.value)
    assert not backend.ready
    backend.close()


def test_a_corrupt_model_is_refused_before_loading(tmp_path: Path, models_dir: Path) -> None:
    target = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    shutil.copy(models_dir / target.name, target)
    with target.open("r+b") as f:
        f.seek(5_000_000)
        f.write(b"\x00" * 64)
    backend = LlamaBackend(smol_llama(), tmp_path)
    with pytest.raises(BackendError, match="corrupt"):
        backend.load()
    backend.close()


def test_a_gguf_path_works_as_the_model(models_dir: Path) -> None:
    backend = LlamaBackend(
        smol_llama(model=str(models_dir / "SmolLM2-135M-Instruct.Q4_1.gguf")), models_dir
    )
    backend.load()
    assert backend.ready
    backend.close()


def test_auto_takes_the_first_model_fast_enough_here(models_dir: Path) -> None:
    settings = smol_llama(model="auto", auto_models=("smollm2-135m-instruct", QWEN_05B))
    backend = LlamaBackend(settings, models_dir)
    backend.load()
    try:
        assert backend.chosen_model == "smollm2-135m-instruct"
        assert backend.name == "local smollm2-135m-instruct"
        assert backend.choice.startswith("smollm2-135m-instruct: sentence after the beat ")
        assert "tokens/s" in backend.choice
    finally:
        backend.close()


def test_auto_passes_over_a_model_too_slow_or_missing(models_dir: Path, tmp_path: Path) -> None:
    # No model reads a prompt in a tenth of a millisecond: the first fails the probe.
    strict = smol_llama(
        model="auto",
        auto_models=("smollm2-135m-instruct", QWEN_05B),
        auto_max_sentence_s=1e-4,
    )
    backend = LlamaBackend(strict, models_dir)
    backend.load()
    try:
        assert backend.chosen_model == QWEN_05B and backend.name == f"local {QWEN_05B}"
        assert backend.choice == f"{QWEN_05B}: the larger model is too slow here"
    finally:
        backend.close()
    # A preferred model that is not on this device is passed over without a try.
    mine = tmp_path / "models"
    mine.mkdir()
    for name in ("SmolLM2-135M-Instruct.Q4_1.gguf", "MANIFEST"):
        (mine / name).symlink_to(models_dir / name)
    missing = smol_llama(model="auto", auto_models=(QWEN_05B, "smollm2-135m-instruct"))
    backend = LlamaBackend(missing, mine)
    assert backend.auto_candidates() == ["smollm2-135m-instruct"]
    backend.load()
    try:
        assert backend.chosen_model == "smollm2-135m-instruct"
        assert "not here" in backend.choice
    finally:
        backend.close()


def cgroup_tree(tmp_path: Path, limits: dict[str, tuple[str, int]]) -> tuple[Path, Path]:
    """A /proc and a cgroup v2 tree: this process in system.slice/moodtale.service."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal: 4000000 kB\nMemAvailable: 3000000 kB\n")
    (proc / "self" / "cgroup").write_text("0::/system.slice/moodtale.service\n")
    root = tmp_path / "cgroup"
    for group, (limit, used) in limits.items():
        path = root / group
        path.mkdir(parents=True, exist_ok=True)
        (path / "memory.max").write_text(f"{limit}\n")
        (path / "memory.current").write_text(f"{used}\n")
    return proc, root


def test_auto_counts_the_services_memory_limit(tmp_path: Path) -> None:
    free = 3000000 * 1024
    gib = 2**30
    proc, root = cgroup_tree(
        tmp_path,
        {"system.slice": ("max", 0), "system.slice/moodtale.service": (str(2 * gib), gib // 2)},
    )
    assert available_memory(proc, root) == 2 * gib - gib // 2  # the limit, less what is used
    proc, root = cgroup_tree(
        tmp_path / "parent",
        {"system.slice": (str(gib), 0), "system.slice/moodtale.service": ("max", gib // 4)},
    )
    assert available_memory(proc, root) == gib  # a parent's limit counts too
    proc, root = cgroup_tree(tmp_path / "none", {"system.slice/moodtale.service": ("max", 5)})
    assert available_memory(proc, root) == free  # no limit: what the system has free
    (proc / "self" / "cgroup").write_text("4:memory:/x\n")  # cgroup v1: not read
    (root / "x").mkdir()
    (root / "x" / "memory.max").write_text("1000\n")
    assert available_memory(proc, root) == free
    # Two limits: the tighter counts; a limit wider than the free memory: the free memory.
    proc, root = cgroup_tree(
        tmp_path / "two",
        {
            "system.slice": (str(gib), gib // 2),
            "system.slice/moodtale.service": (str(8 * gib), gib // 2),
        },
    )
    assert available_memory(proc, root) == gib // 2
    proc, root = cgroup_tree(
        tmp_path / "wide", {"system.slice/moodtale.service": (str(64 * gib), 0)}
    )
    assert available_memory(proc, root) == free
    # Page cache charged to the service (a model file read before) is room: it is given back.
    proc, root = cgroup_tree(
        tmp_path / "cache", {"system.slice/moodtale.service": (str(2 * gib), gib + 1000)}
    )
    (root / "system.slice/moodtale.service/memory.stat").write_text(f"anon 1000\nfile {gib}\n")
    assert available_memory(proc, root) == 2 * gib - 1000
    # Over the limit already: no room, not less than none.
    proc, root = cgroup_tree(
        tmp_path / "over", {"system.slice/moodtale.service": (str(gib), 2 * gib)}
    )
    assert available_memory(proc, root) == 0


def test_the_old_first_token_setting_is_read_and_left_out() -> None:
    settings = LlamaSettings(auto_max_first_token_s=1.0)  # type: ignore[call-arg]
    assert settings.auto_max_sentence_s == 3.0
