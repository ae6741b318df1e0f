"""The local story model: llama.cpp through llama-cpp-python, owned by one thread.

llama.cpp objects are not thread-safe, so the model lives in a single-worker executor:
loading, tokenizing and generating all run there, one at a time. Callers stream tokens
back through a queue and can cancel between two tokens.

The prompt of each turn extends the previous one (same system text, every earlier
reply appended verbatim), and llama-cpp-python reuses the longest common token prefix
of its KV cache: only the new instruction is evaluated before the first token.
A summary (folding old turns) runs with the story's cache saved and restored around it,
and the new part of a prompt is read a slice at a time, so a cancel is heard within a
slice even while a long prompt is being read.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from appliance.model_files import Manifest, ModelFileError, load_manifest
from appliance.story.llm import BackendError, ChatMessage, GenerationRequest, GenerationStats
from appliance.story.no_repeat import (
    NoEarlyEnd,
    NoRepeatNGrams,
    TokenSpellings,
    sentence_openings,
)

log = logging.getLogger(__name__)

# Chat markers of the model families we ship and the common ones; generation stops
# at any of them (the guards strip whatever slips through).
CHAT_STOPS = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>", "</s>")

AUTO = "auto"
AUTO_MODELS = ("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct")
"""``model = "auto"``: the first of these that is here, fits in memory and (all but the
last) passes the speed probe at load."""
DEFAULT_MODEL = AUTO
MEMORY_HEADROOM = 512 * 2**20
"""Memory left for everything else when a model is chosen for the free memory it fits."""
PROBE_PROMPT = (
    "You are the narrator of a gentle story for a child. The characters: Pip is a fox, "
    "curious; Hazel is a mouse, shy. They live by the river, near the old mill and the "
    "willow bridge, and they want to find a silver acorn before the first snow."
)
PROBE_REPLY = 'Pip woke up by the river and stretched. "What a morning!" he said.'
PROBE_NEXT = "Next: a fallen tree blocked the path at Willow Bridge. Make it funny."
PROBE_BEAT = "A fallen tree blocked the path at Willow Bridge."
"""A turn begins with its beat, told from the plan at once; the model goes on from it."""
PROBE_TOKENS = 24
PROBE_SENTENCE_TOKENS = 20
"""The model's first sentence after the beat: it must be written while the listener hears
the beat (a short one takes about 3 s to say), or there is a silence."""
EVAL_SLICE = 64
"""Prompt tokens read between two looks at the cancel event (about half a second on a
2-core machine with the default model)."""


class LlamaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default=DEFAULT_MODEL,
        min_length=1,
        description="Story model: auto (the larger story model where memory and a speed "
        "probe at start allow, else the smaller), a name from models/MANIFEST (or added "
        "with 'moodtale models add'), or the path of a .gguf file.",
    )
    auto_models: tuple[str, ...] = Field(
        default=AUTO_MODELS,
        min_length=1,
        description="auto: the models to try, the preferred first (names from "
        "models/MANIFEST). The last is always taken when none before it will do.",
    )
    auto_min_tokens_per_s: float = Field(
        default=8.0,
        gt=0,
        le=1000,
        description="auto: the larger model is kept only if it writes at least this fast "
        "(about twice what the narrator speaks).",
    )
    auto_max_sentence_s: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="auto: ... and reads a new turn's instruction and its beat and writes "
        "the sentence after it within this time (while a listener hears the beat: a short "
        "one takes about 3 s to say).",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        # auto_max_first_token_s (the first sentence's time, from before a turn began with
        # its beat) measured something that no longer decides: read, and left out.
        if isinstance(data, dict) and "auto_max_first_token_s" in data:
            data = {k: v for k, v in data.items() if k != "auto_max_first_token_s"}
            log.warning(
                "story.llama.auto_max_first_token_s is no longer used (auto now times the "
                "sentence after the beat: story.llama.auto_max_sentence_s)"
            )
        return data

    n_ctx: int = Field(
        default=2048, ge=256, le=32768, description="Context window in tokens (prompt + reply)."
    )
    threads: int = Field(
        default=0, ge=0, le=64, description="CPU threads for generation (0: one per core)."
    )
    batch: int = Field(default=256, ge=16, le=4096, description="Prompt evaluation batch size.")
    temperature: float = Field(default=0.8, ge=0, le=2, description="Sampling temperature.")
    top_p: float = Field(default=0.95, gt=0, le=1, description="Nucleus sampling threshold.")
    min_p: float = Field(default=0.05, ge=0, lt=1, description="Minimum token probability.")
    repeat_penalty: float = Field(
        default=1.1, ge=1, le=2, description="Penalty on recently used tokens."
    )
    no_repeat_ngram: int = Field(
        default=5,
        ge=0,
        le=32,
        description="Forbid copying any run of this many tokens from the story so far (0: off).",
    )
    seed: int = Field(default=-1, ge=-1, description="Sampling seed (-1: a new one every turn).")
    max_tokens: int = Field(
        default=120, ge=16, le=1024, description="Most tokens one turn may generate."
    )
    first_token_timeout_s: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="A turn whose first token takes longer counts as a failure of the model.",
    )
    token_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="Most time allowed between two tokens."
    )


CGROUP_ROOT = Path("/sys/fs/cgroup")


def page_cache(group: Path) -> int:
    """Bytes of file pages charged to a cgroup (``file`` in memory.stat; 0 if unknown)."""
    try:
        for line in (group / "memory.stat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "file":
                return int(value)
    except (OSError, ValueError):
        return 0
    return 0


_DONE = object()
T = TypeVar("T")


def available_memory(proc: Path = Path("/proc"), cgroups: Path = CGROUP_ROOT) -> int | None:
    """Bytes of memory a model may still take: what the system has free (MemAvailable),
    and no more than is left under this service's own limit (cgroup v2 ``memory.max``, as
    systemd's MemoryMax= sets it). None where neither is known."""
    free = None
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        free = None
    room = cgroup_room(proc, cgroups)
    if room is None:
        return free
    return room if free is None else min(free, room)


def cgroup_room(proc: Path = Path("/proc"), cgroups: Path = CGROUP_ROOT) -> int | None:
    """Bytes left under this process's cgroup v2 memory limit (None: no limit, or not
    cgroup v2). The limit that counts is the tightest of the cgroup and its parents."""
    try:
        line = next(
            entry
            for entry in (proc / "self" / "cgroup").read_text().splitlines()
            if entry.startswith("0::")
        )
    except (OSError, StopIteration):
        return None
    group = cgroups / line[3:].strip().lstrip("/")
    room = None
    while True:
        try:
            limit = (group / "memory.max").read_text().strip()
            used = int((group / "memory.current").read_text().strip())
        except (OSError, ValueError):
            limit = "max"
            used = 0
        if limit != "max":
            # The page cache charged to the group (a model file read or mapped before) is
            # given back under pressure: it is room.
            left = max(0, int(limit) - used + page_cache(group))
            room = left if room is None else min(room, left)
        if group == cgroups or cgroups not in group.parents:
            return room
        group = group.parent


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when a file is replaced, rewritten or deleted (None: it is gone)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class LlamaBackend:
    """``kind`` local; ``ready`` once the model is loaded; ``error`` says why it is not."""

    kind: Literal["local"] = "local"

    def __init__(
        self, settings: LlamaSettings, models_dir: Path, manifest: Manifest | None = None
    ) -> None:
        self.settings = settings
        self.models_dir = models_dir
        self._manifest = manifest
        self.name = f"local {settings.model}"
        self.chosen_model = settings.model
        """The model in use: with auto, the one chosen at load."""
        self.choice: str = ""
        """With auto, why that model (in plain words)."""
        self.model_path: Path | None = None
        self.error: str | None = None
        self.load_s = 0.0
        self._llm: Any = None
        self._formatter: Any = None
        self._spellings: TokenSpellings | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")
        self._file_identity: tuple[int, int, int, int] | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._llm is not None

    def resolve_model_path(self, wanted: str | None = None) -> Path:
        """The verified model file: a manifest name is checked against its sha256."""
        wanted = wanted or self.settings.model
        manifest = self._manifest or load_manifest(models_dir=self.models_dir)
        if wanted == AUTO:
            wanted = self.auto_candidates()[-1]
        if wanted in manifest.entries:
            return manifest[wanted].require(self.models_dir)
        path = Path(wanted).expanduser()
        if path.suffix == ".gguf" or os.sep in wanted:
            if not path.is_file():
                raise ModelFileError(wanted, path, "is missing")
            return path
        raise ModelFileError(
            wanted, self.models_dir, "is not in models/MANIFEST (nor a path to a .gguf file)"
        )

    def auto_candidates(self) -> list[str]:
        """auto: the models worth trying, the larger first. One that is missing, corrupt
        or too big for the free memory is passed over; the last is always tried."""
        manifest = self._manifest or load_manifest(models_dir=self.models_dir)
        free = available_memory()
        names = []
        wanted = self.settings.auto_models
        for name in wanted[:-1]:
            if name not in manifest.entries:
                log.info("auto: %s is not in models/MANIFEST", name)
                continue
            entry = manifest[name]
            if not entry.path_in(self.models_dir).is_file():
                continue
            if free is not None and entry.size + MEMORY_HEADROOM > free:
                log.info("auto: %s passed over: %d MB free", name, free // 2**20)
                continue
            names.append(name)
        return [*names, wanted[-1]]

    def load(self) -> None:
        """Load (or reload) the model in the owner thread; raises ``BackendError``."""
        self._executor.submit(self._load).result()

    def _load(self) -> None:
        if self.settings.model != AUTO:
            self._load_one(self.settings.model)
            return
        candidates = self.auto_candidates()
        for name in candidates[:-1]:
            try:
                self._load_one(name)
            except BackendError as exc:
                log.warning("auto: %s could not be loaded (%s)", name, exc.problem)
                continue
            fast, verdict = self._probe()
            if fast:
                self.choice = f"{name}: {verdict}"
                log.info("auto: story model %s (%s)", name, verdict)
                return
            log.info("auto: %s is too slow here (%s)", name, verdict)
            self._unload()
        self._load_one(candidates[-1])
        self.choice = f"{candidates[-1]}: " + (
            "the larger model is too slow here"
            if candidates[:-1]
            else "the larger model is not here or does not fit in memory"
        )

    def _probe(self) -> tuple[bool, str]:
        """Time what a turn costs, in the owner thread: a story's prompt is read first (as
        the cache holds it on the device), then a new turn's instruction is read and a
        few tokens are written."""
        story = (ChatMessage("system", PROBE_PROMPT), ChatMessage("user", "Begin the story."))
        for _chunk in self._llm.create_completion(
            self._prompt_tokens(story), max_tokens=1, temperature=0.0, stream=True
        ):
            pass
        turn = (*story, ChatMessage("assistant", PROBE_REPLY), ChatMessage("user", PROBE_NEXT))
        prompt = self._prompt_tokens(turn, PROBE_BEAT)
        started = time.perf_counter()
        first = sentence = 0.0
        count = 0
        for _chunk in self._llm.create_completion(
            prompt, max_tokens=PROBE_TOKENS, temperature=0.0, stream=True
        ):
            count += 1
            if not first:
                first = time.perf_counter() - started
            if count == PROBE_SENTENCE_TOKENS:
                sentence = time.perf_counter() - started
        writing = time.perf_counter() - started - first
        rate = (count - 1) / writing if count > 1 and writing > 0 else 0.0
        if not sentence:  # the model stopped early: the sentence at the rate it wrote
            sentence = first + (PROBE_SENTENCE_TOKENS - 1) / rate if rate else float("inf")
        self._llm.reset()
        verdict = (
            f"sentence after the beat {sentence:.2f} s (first token {first:.2f} s), "
            f"{rate:.1f} tokens/s"
        )
        fast = (
            sentence <= self.settings.auto_max_sentence_s
            and rate >= self.settings.auto_min_tokens_per_s
        )
        return fast, verdict

    def _load_one(self, name: str) -> None:
        self._llm = None
        self._spellings = None
        started = time.perf_counter()
        self.chosen_model = name
        self.name = f"local {name}"
        try:
            path = self.resolve_model_path(name)
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            threads = self.settings.threads or os.cpu_count() or 1
            llm = Llama(
                model_path=str(path),
                n_ctx=self.settings.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=self.settings.batch,
                seed=max(self.settings.seed, 0),
                verbose=False,
            )
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ValueError("the model has no chat template (not an instruction model?)")
            eos, bos = llm.token_eos(), llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        except ModelFileError as exc:
            self.error = str(exc)
            raise BackendError(self.name, str(exc), broken=True) from exc
        except ImportError as exc:
            self.error = f"llama-cpp-python is not installed ({exc})"
            raise BackendError(self.name, self.error, broken=True) from exc
        except (ValueError, RuntimeError, OSError) as exc:
            self.error = f"could not load {name}: {exc}"
            raise BackendError(self.name, self.error, broken=True) from exc
        self._llm = llm
        self.model_path = path
        self._file_identity = file_identity(path)
        self.error = None
        self.load_s = time.perf_counter() - started
        log.info("story model %s loaded in %.2f s (%d threads)", path.name, self.load_s, threads)

    def close(self) -> None:
        self._executor.submit(self._unload)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _unload(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    # -- prompts -----------------------------------------------------------------------

    def _prompt_tokens(self, messages: tuple[ChatMessage, ...], prefill: str = "") -> list[int]:
        prompt = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        ).prompt
        prompt += prefill
        # add_bos=False: the template itself says whether a BOS token starts the prompt.
        tokens: list[int] = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        return tokens

    def _plain_tokens(self, text: str) -> list[int]:
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return tokens

    def prompt_tokens(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        """The prompt's tokens; call from the owner thread (inside ``call``)."""
        return self._prompt_tokens(messages)

    def _check_model_file(self) -> None:
        """Before each request: a model file deleted or replaced since it was loaded sets
        the model aside (unloaded, so no stale mapping of it is read); the fallback
        router reloads it once the file checks out again."""
        if self._llm is None or self.model_path is None:
            return
        now = file_identity(self.model_path)
        if now == self._file_identity:
            return
        what = "was deleted" if now is None else "changed"
        self.error = f"the model file {what} while running ({self.model_path})"
        log.warning("story model: %s; unloading it", self.error)
        self._executor.submit(self._unload).result()
        raise BackendError(self.name, self.error, broken=True)

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(llama)`` in the owner thread and return its result."""
        if not self.ready:
            raise BackendError(self.name, self.error or "not loaded", broken=True)
        return self._executor.submit(lambda: fn(self._llm)).result()

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        self._check_model_file()
        if not self.ready:
            raise BackendError(self.name, self.error or "not loaded", broken=True)
        future: Future[list[int]] = self._executor.submit(self._prompt_tokens, messages)
        # The owner thread may be stuck (a computation that never returns): that is the
        # model stalling before its first token, and it is timed like one.
        timeout = self.settings.first_token_timeout_s
        try:
            return len(future.result(timeout=timeout))
        except FutureTimeoutError:
            future.cancel()
            raise BackendError(self.name, f"no answer for {timeout:.0f} s", broken=True) from None

    # -- generation --------------------------------------------------------------------

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        self._check_model_file()
        if not self.ready:
            raise BackendError(self.name, self.error or "not loaded", broken=True)
        pieces: queue.Queue[object] = queue.Queue()
        abandoned = threading.Event()
        job = self._executor.submit(self._generate, request, cancel, abandoned, pieces, stats)
        timeout = self.settings.first_token_timeout_s
        stalled = False
        try:
            while True:
                try:
                    item = pieces.get(timeout=timeout)
                except queue.Empty:
                    stalled = True
                    raise BackendError(
                        self.name, f"no token for {timeout:.0f} s", broken=True
                    ) from None
                if item is _DONE:
                    return
                if isinstance(item, BackendError):
                    raise item
                if isinstance(item, BaseException):
                    raise BackendError(self.name, f"generation failed: {item!r}") from item
                assert isinstance(item, str)
                timeout = self.settings.token_timeout_s
                yield item
        finally:
            abandoned.set()
            if stalled:
                # Stuck: the turn goes elsewhere now, not after waiting for it once more
                # (a generation still queued behind whatever holds the model is dropped).
                job.cancel()
            else:
                # The owner stops within a token: wait, so that ``stats`` are complete.
                with contextlib.suppress(Exception):
                    job.result(timeout=self.settings.token_timeout_s)

    def _cached_prefix(self, tokens: list[int]) -> int:
        """How many leading tokens of the prompt are already in the KV cache."""
        cached = 0
        for have, want in zip(self._llm.input_ids[: self._llm.n_tokens], tokens, strict=False):
            if have != want:
                break
            cached += 1
        return cached

    def _processors(self, request: GenerationRequest, prompt_length: int) -> Any:
        """The logits processors for this request (None when it needs none): the
        no-repeat constraint, and no end before ``min_tokens``."""
        from llama_cpp import LogitsProcessorList

        processors: list[Any] = []
        if request.min_tokens:
            processors.append(NoEarlyEnd(self._end_tokens(), prompt_length, request.min_tokens))
        n = self.settings.no_repeat_ngram
        if request.no_repeat_ngram is not None:
            n = request.no_repeat_ngram
        if request.avoid_repeating and n:
            processors.append(self._no_repeat(request, prompt_length, n))
        return LogitsProcessorList(processors) if processors else None

    def _end_tokens(self) -> list[int]:
        """The tokens that end a reply: the model's end of text and the chat end markers."""
        ends = {int(self._llm.token_eos())}
        for marker in CHAT_STOPS:
            tokens = self._llm.tokenize(marker.encode(), add_bos=False, special=True)
            if len(tokens) == 1:
                ends.add(int(tokens[0]))
        return sorted(ends)

    def _no_repeat(self, request: GenerationRequest, prompt_length: int, n: int) -> NoRepeatNGrams:
        if self._spellings is None:
            vocabulary = range(self._llm.n_vocab())
            self._spellings = TokenSpellings([self._llm.detokenize([t]) for t in vocabulary])
        return NoRepeatNGrams(
            [self._plain_tokens(text) for text in request.avoid_repeating],
            n,
            prompt_length,
            openings=[self._plain_tokens(text) for text in request.avoid_openings],
            spellings=self._spellings,
            echo_tokens=[self._plain_tokens(text) for text in request.avoid_echo],
            free_tokens={
                token
                for word in request.free_words
                for spelling in (word, " " + word)
                for token in self._plain_tokens(spelling)
            },
            sentence_openings={
                pair for text in request.avoid_sentence_openings for pair in sentence_openings(text)
            },
            lead=request.prefill,
        )

    def _generate(
        self,
        request: GenerationRequest,
        cancel: threading.Event,
        abandoned: threading.Event,
        pieces: queue.Queue[object],
        stats: GenerationStats,
    ) -> None:
        try:
            if self._llm is None:
                raise BackendError(self.name, self.error or "not loaded", broken=True)
            started = time.perf_counter()
            tokens = self._prompt_tokens(request.messages, request.prefill)
            stats.prompt_tokens = len(tokens)
            if len(tokens) + request.max_tokens > self.settings.n_ctx:
                raise BackendError(
                    self.name,
                    f"prompt of {len(tokens)} tokens + {request.max_tokens} to generate "
                    f"exceeds n_ctx {self.settings.n_ctx}",
                )
            cached = self._cached_prefix(tokens)
            stats.extra["cached_prompt_tokens"] = float(cached)
            with (
                self._story_cache_kept()
                if request.purpose == "summary"
                else contextlib.nullcontext()
            ):
                self._run(
                    request,
                    tokens,
                    cached=cached,
                    cancelled=lambda: cancel.is_set() or abandoned.is_set(),
                    pieces=pieces,
                    stats=stats,
                    started=started,
                )
            stats.duration_s = time.perf_counter() - started
            pieces.put(_DONE)
        except BaseException as exc:  # the owner thread must survive anything a request does
            pieces.put(exc)

    def _run(
        self,
        request: GenerationRequest,
        tokens: list[int],
        *,
        cached: int,
        cancelled: Callable[[], bool],
        pieces: queue.Queue[object],
        stats: GenerationStats,
        started: float,
    ) -> None:
        # A warm request reads all but the last token (which any request re-reads).
        leave = 1 if request.purpose == "warm" else EVAL_SLICE
        if not self._read_prompt(tokens, cached, cancelled, leave) or request.purpose == "warm":
            return
        seed = request.seed
        if seed is None:
            seed = self.settings.seed if self.settings.seed >= 0 else None
        processors = self._processors(request, len(tokens))
        chunks = self._llm.create_completion(
            tokens,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=self.settings.top_p,
            min_p=self.settings.min_p,
            repeat_penalty=self.settings.repeat_penalty,
            seed=seed if seed is not None else int.from_bytes(os.urandom(4), "little"),
            stop=list(CHAT_STOPS + request.stop),
            stream=True,
            logits_processor=processors,
        )
        if request.prefill:
            pieces.put(request.prefill)
        try:
            for chunk in chunks:
                if cancelled():
                    break
                text = chunk["choices"][0]["text"]
                if not text:
                    continue
                if stats.ttft_s == 0.0:
                    stats.ttft_s = time.perf_counter() - started
                pieces.put(text)
        finally:
            chunks.close()
        stats.completion_tokens = max(0, self._llm.n_tokens - len(tokens) + 1)

    def _read_prompt(
        self, tokens: list[int], cached: int, cancelled: Callable[[], bool], leave: int
    ) -> bool:
        """Read the prompt's uncached tokens into the cache a slice at a time, until at
        most ``leave`` are left (for generation to read in one go: a turn's usual few
        dozen new tokens cost no extra pass); False when cancelled first. What was read
        stays cached, so a later request with the same prompt starts from there."""
        end = len(tokens) - leave
        if end > cached:
            self._llm.n_tokens = cached
        for start in range(cached, end, EVAL_SLICE):
            if cancelled():
                return False
            self._llm.eval(tokens[start : min(start + EVAL_SLICE, end)])
        return not cancelled()

    @contextlib.contextmanager
    def _story_cache_kept(self) -> Iterator[None]:
        """Save the cache (the story's prompt), and put it back afterwards: a summary
        must not cost the next turn a re-read of its whole prompt."""
        from llama_cpp import llama_cpp as capi

        llm = self._llm
        context = llm._ctx.ctx
        n_tokens = llm.n_tokens
        ids = llm.input_ids[:n_tokens].copy()
        size = capi.llama_state_seq_get_size(context, 0)
        saved = (ctypes.c_uint8 * size)()
        size = capi.llama_state_seq_get_data(context, saved, size, 0)
        try:
            yield
        finally:
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            restored = bool(size) and capi.llama_state_seq_set_data(context, saved, size, 0) > 0
            if restored:
                llm.input_ids[:n_tokens] = ids
                llm.n_tokens = n_tokens
            else:
                log.warning("could not restore the story's cache after a summary")
                llm.n_tokens = 0
            # The logits are not those of the last cached token: generation re-reads it.
            llm._requires_eval = True
