"""``moodtale bench latency``: from a new expression in front of the camera to the story
answering it, measured on the whole appliance.

The appliance runs as it does on the device (perception, mood, story model, narrator,
web server), fed by a frame source that shows one face and, on cue, another expression.
For each switch it measures from the first frame of the new expression to
(a) the mood shift, (b) the first token of the turn that answers it, as read by an SSE
client over HTTP, and (c) the first sample of that turn's audio written. A turn begins
with its beat, told from the plan (``story.lead_with_beat = "sentence"``), so (b) and (c)
say how soon the story answers; (d) says when the model's own words of that turn arrived
(its second sentence), and the gap is the silence a listener would hear between the end of
the first sentence's audio and that second sentence (0 when it was ready in time).

The narrator writes WAV files as fast as they are synthesized. With ``listen`` (the
default of the command) the story keeps to a listener's pace (``story.reading_wpm``, about
the narrator's speed), as the appliance does with no sound device and as a speaker makes
it: it waits between turns, and prepares answers to likely shifts meanwhile. Without it
(``--flat-out``) the story never waits and nearly every turn is cut by the next switch:
the hardest case.
"""

from __future__ import annotations

import logging
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from appliance.bench.machine import machine_summary, package_version
from appliance.bench.repeatable import bench_appliance_settings
from appliance.camera.image_files import read_rgb
from appliance.camera.pacing import FramePacer
from appliance.camera.replay import SAMPLE_FRAMES_DIR
from appliance.events import Frame, Mood
from appliance.settings import Settings
from appliance.speech import AudioDone

log = logging.getLogger(__name__)

PICTURES = {"happy": "01-astronaut.jpg", "sad": "02-cameraman.jpg"}
RUN_TIMEOUT_S = 90.0
FPS = 15.0


class SwitchingFrames:
    """A frame source showing one picture at a steady rate until told to show another;
    it records when the first frame of the new picture was delivered."""

    name = "bench replay"

    def __init__(self, pictures: dict[str, NDArray[np.uint8]], first: str) -> None:
        self._pictures = pictures
        self.showing = first
        self._next: str | None = None
        self._lock = threading.Lock()
        self._pacer = FramePacer(FPS)
        self._seq = 0
        self.switched = threading.Event()
        self.switched_at = 0.0

    def open(self) -> None:
        self._pacer = FramePacer(FPS)

    def switch(self, label: str) -> None:
        with self._lock:
            self.switched.clear()
            self._next = label

    def read(self) -> Frame:
        t = self._pacer.wait()
        with self._lock:
            if self._next is not None:
                self.showing, self._next = self._next, None
                self.switched_at = t
                self.switched.set()
            image = self._pictures[self.showing]
        self._seq += 1
        return Frame(image=image, t=t, seq=self._seq, source=self.name)

    def close(self) -> None:
        pass


@dataclass
class RunResult:
    to: str
    shift_ms: float
    first_token_ms: float
    first_audio_ms: float
    turn: int
    model_ms: float | None = None
    """When the turn's second sentence (the model's own words, after the beat) arrived;
    None when the turn had only one."""
    gap_ms: float | None = None
    """How long after the first sentence's audio ended the second sentence arrived."""
    tries: int = 0
    """How many tries the answering turn took (a try caught by the guards costs time)."""


def percentile_max(values: list[float]) -> tuple[float, float]:
    return (round(statistics.median(values), 1), round(max(values), 1)) if values else (0, 0)


class _Watch:
    """What the appliance did, with times, from its own hooks."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.shifts: list[tuple[float, str]] = []
        self.audio: list[AudioDone] = []

    def on_mood(self, mood: Mood) -> None:
        if mood.shift:
            with self.lock:
                self.shifts.append((time.monotonic(), mood.dominant))
                self.lock.notify_all()

    def on_audio(self, done: AudioDone) -> None:
        with self.lock:
            self.audio.append(done)
            self.lock.notify_all()


def _wait(test: Any, watch: _Watch, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    with watch.lock:
        while (found := test()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the appliance did not answer in time")
            watch.lock.wait(min(left, 0.2))
    return found


def run_latency_bench(
    settings: Settings, runs: int, model: str | None = None, seed: int = 1, listen: bool = True
) -> dict[str, Any]:
    from appliance.bench.sse_reader import SSEReader
    from appliance.daemon import Appliance

    pictures = {label: read_rgb(SAMPLE_FRAMES_DIR / name) for label, name in PICTURES.items()}
    frames = SwitchingFrames(pictures, first="happy")
    watch = _Watch()
    chooser = random.Random(seed)
    results: list[RunResult] = []
    failures = 0
    prepared_used = 0
    model_used = ""
    with tempfile.TemporaryDirectory(prefix="moodtale-bench-") as state:
        bench_settings = bench_appliance_settings(settings, Path(state), model)
        appliance = Appliance(bench_settings, make_source=lambda: frames)
        appliance.mood_listeners.append(watch.on_mood)
        appliance.narrator.on_audio = watch.on_audio
        if listen:
            appliance.story_loop.behind_s = appliance.reading.behind_s
        appliance.start()
        assert appliance.port is not None
        reader = SSEReader("127.0.0.1", appliance.port)
        reader.start()
        try:
            reader.connected.wait(10)
            # Warm up: the first turns load the model and fill its cache.
            reader.wait_for(
                lambda ev: sum(e.kind == "turn" and e.data["phase"] == "finished" for e in ev) >= 2,
                timeout=240,
            )
            for run in range(runs):
                target = "sad" if frames.showing == "happy" else "happy"
                # Land the switch anywhere in a turn, as a reader's face would.
                time.sleep(chooser.uniform(1.0, 4.0))
                try:
                    results.append(_one_switch(appliance, frames, target, watch, reader))
                except TimeoutError as exc:
                    failures += 1
                    log.warning("run %d: %s", run + 1, exc)
            time.sleep(5)  # let the last answering turn finish and be stored
            tries = {t.idx: t.attempts for t in appliance.store.turns(appliance.teller.story.id)}
            for result in results:
                result.tries = tries.get(result.turn, 0)
            prepared_used = appliance.teller.prepared_used
            model_used = appliance.teller.llm.name.removeprefix("local ")
        finally:
            reader.close()
            appliance.shutdown()
    shift_p50, shift_max = percentile_max([r.shift_ms for r in results])
    token_p50, token_max = percentile_max([r.first_token_ms for r in results])
    audio_p50, audio_max = percentile_max([r.first_audio_ms for r in results])
    model_p50, model_max = percentile_max([r.model_ms for r in results if r.model_ms is not None])
    _gap_p50, gap_max = percentile_max([r.gap_ms for r in results if r.gap_ms is not None])
    return {
        "runs": len(results),
        "listen": listen,
        "answered_on_first_try": sum(r.tries == 1 for r in results),
        "answered_from_prepared": prepared_used,
        "failed_runs": failures,
        "model": model_used or bench_settings.story.llama.model,
        "shift_ms_p50": shift_p50,
        "shift_ms_max": shift_max,
        "first_token_ms_p50": token_p50,
        "first_token_ms_max": token_max,
        "first_audio_ms_p50": audio_p50,
        "first_audio_ms_max": audio_max,
        "model_sentence_ms_p50": model_p50,
        "model_sentence_ms_max": model_max,
        "with_model_sentence": sum(r.model_ms is not None for r in results),
        "gap_after_first_ms_max": gap_max,
        "each": [r.__dict__ for r in results],
        "fps": FPS,
        "llama_cpp_python": package_version("llama-cpp-python"),
        **machine_summary(),
    }


def _one_switch(
    appliance: Any, frames: SwitchingFrames, target: str, watch: _Watch, reader: Any
) -> RunResult:
    with watch.lock:
        shifts_before = len(watch.shifts)
    frames.switch(target)
    if not frames.switched.wait(5):
        raise TimeoutError("the camera did not show the new picture")
    t0 = frames.switched_at

    def shift_seen() -> float | None:
        for at, label in watch.shifts[shifts_before:]:
            if label == target:
                return at
        return None

    shift_at = _wait(shift_seen, watch, RUN_TIMEOUT_S)

    def answering_turn(events: list[Any]) -> bool:
        return _answer(events, shift_at, target) is not None

    events = reader.wait_for(answering_turn, timeout=RUN_TIMEOUT_S)
    turn_id, first_token_at = _answer(events, shift_at, target)  # type: ignore[misc]

    def audio_seen() -> float | None:
        for done in watch.audio:
            if done.turn_id == turn_id:
                return done.t_first_sample
        return None

    audio_at = _wait(audio_seen, watch, RUN_TIMEOUT_S)
    first_heard = next(d for d in watch.audio if d.turn_id == turn_id)
    second_at = _second_sentence(reader, turn_id)
    result = RunResult(
        to=target,
        shift_ms=round((shift_at - t0) * 1000, 1),
        first_token_ms=round((first_token_at - t0) * 1000, 1),
        first_audio_ms=round((audio_at - t0) * 1000, 1),
        turn=turn_id,
    )
    if second_at is not None:
        result.model_ms = round((second_at - t0) * 1000, 1)
        heard_out = first_heard.t_first_sample + first_heard.duration_s
        result.gap_ms = round(max(0.0, second_at - heard_out) * 1000, 1)
    log.info("switch to %s: %s", target, result)
    return result


def _second_sentence(reader: Any, turn_id: int) -> float | None:
    """When the turn's second sentence arrived over HTTP (None: the turn ended, or was
    cut, with one)."""

    def seen(events: list[Any]) -> bool:
        return _second(events, turn_id) is not None or any(
            e.kind == "turn" and e.data.get("turn") == turn_id and e.data["phase"] != "started"
            for e in events
        )

    try:
        events = reader.wait_for(seen, timeout=RUN_TIMEOUT_S)
    except TimeoutError:
        return None
    return _second(events, turn_id)


def _second(events: list[Any], turn_id: int) -> float | None:
    sentences = [e.at for e in events if e.kind == "sentence" and e.data["turn"] == turn_id]
    return sentences[1] if len(sentences) > 1 else None


def _answer(events: list[Any], shift_at: float, target: str) -> tuple[int, float] | None:
    """The first turn started after the shift for the new mood, and when its first token
    arrived over HTTP."""
    turn_id = None
    for event in events:
        if event.at < shift_at:
            continue
        if (
            turn_id is None
            and event.kind == "turn"
            and event.data["phase"] == "started"
            and event.data["mood_label"] == target
        ):
            turn_id = event.data["turn"]
        elif turn_id is not None and event.kind == "token" and event.data["turn"] == turn_id:
            return turn_id, event.at
    return None


def describe_latency_bench(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"latency benchmark: {result['runs']} expression switches "
            f"({result['failed_runs']} unanswered; {result['answered_on_first_try']} on the "
            f"first try, {result['answered_from_prepared']} from answers prepared ahead), "
            f"{'paced as heard' if result['listen'] else 'flat out (never waiting)'}, "
            f"model {result['model']}, "
            f"camera {result['fps']:.0f} fps, llama-cpp-python {result['llama_cpp_python']}",
            f"  machine: {result['cpu']}, {result['cores']} cores, {result['arch']}, "
            f"Python {result['python']}",
            "  from the first frame of the new expression to:      p50        worst",
            f"  (a) mood shift                                  {result['shift_ms_p50']:7.0f} ms"
            f"  {result['shift_ms_max']:7.0f} ms",
            f"  (b) first token of the answering turn (SSE)     "
            f"{result['first_token_ms_p50']:7.0f} ms  {result['first_token_ms_max']:7.0f} ms",
            f"  (c) first audio of that turn written            "
            f"{result['first_audio_ms_p50']:7.0f} ms  {result['first_audio_ms_max']:7.0f} ms",
            f"  (d) the model's own first sentence (SSE)        "
            f"{result['model_sentence_ms_p50']:7.0f} ms  {result['model_sentence_ms_max']:7.0f} ms"
            f"  ({result['with_model_sentence']} of {result['runs']} turns had one)",
            f"  silence after the first sentence was heard, worst  "
            f"{result['gap_after_first_ms_max']:.0f} ms",
        ]
    )
