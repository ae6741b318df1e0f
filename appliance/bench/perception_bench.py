"""``moodtale bench perception``: end-to-end perception on replayed frames."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from appliance.bench.machine import machine_summary, package_version, peak_rss_mb
from appliance.camera.image_files import read_rgb
from appliance.camera.replay import SAMPLE_FRAMES_DIR
from appliance.events import Frame
from appliance.vision import Perception

PORTRAIT = SAMPLE_FRAMES_DIR / "01-astronaut.jpg"
# The astronaut's head and shoulders in that frame, as (x, y, side) in pixels.
HEAD_CROP = (170, 10, 240)


@dataclass(frozen=True, slots=True)
class BenchOptions:
    frames: int = 300
    faces: int = 1
    width: int = 640
    height: int = 480
    warmup: int = 20


def _fit(image: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """Scale to cover width x height, centre-cropping the excess (a camera's framing)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = np.asarray(cv2.resize(image, size), dtype=np.uint8)
    y0 = (resized.shape[0] - height) // 2
    x0 = (resized.shape[1] - width) // 2
    return resized[y0 : y0 + height, x0 : x0 + width]


def scene_with_faces(faces: int, width: int, height: int) -> NDArray[np.uint8]:
    """A width x height frame with ``faces`` faces.

    One face: the sample portrait, a reader at arm's length. Several: head-and-shoulders
    crops of the same size whatever their number (as large as a reader's face, until
    they no longer fit), so that per-face costs compare across counts. None: the
    portrait with the face covered.
    """
    portrait = read_rgb(PORTRAIT)
    x, y, side = HEAD_CROP
    if faces == 1:
        return _fit(portrait, width, height)
    if faces == 0:
        blank = portrait.copy()
        blank[y : y + side, x : x + side] = blank[y : y + side, x : x + side].mean(axis=(0, 1))
        return _fit(blank, width, height)
    cell = round(200 * min(width / 640, height / 480))
    while cell > 16 and (width // cell) * (height // cell) < faces:
        cell -= 4
    cols = width // cell
    head = _fit(portrait[y : y + side, x : x + side], cell, cell)
    canvas = np.full((height, width, 3), 96, dtype=np.uint8)
    for index in range(faces):
        r, c = divmod(index, cols)
        canvas[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = head
    return canvas


def bench_frames(options: BenchOptions) -> list[NDArray[np.uint8]]:
    """A few variants of the scene (as is, mirrored, darker, brighter), so the benchmark
    does not run the same pixels every time."""
    base = scene_with_faces(options.faces, options.width, options.height)
    variants = [
        base,
        np.ascontiguousarray(base[:, ::-1]),
        np.asarray(cv2.convertScaleAbs(base, alpha=0.8, beta=-10), dtype=np.uint8),
        np.asarray(cv2.convertScaleAbs(base, alpha=1.1, beta=10), dtype=np.uint8),
    ]
    for image in variants:
        image.flags.writeable = False
    return variants


def run_perception_bench(perception: Perception, options: BenchOptions) -> dict[str, Any]:
    images = bench_frames(options)
    for seq in range(options.warmup):
        perception.read(Frame(images[seq % len(images)], time.monotonic(), seq, "bench"))
    detect, classify, total, found = [], [], [], []
    started = time.perf_counter()
    for seq in range(options.frames):
        frame = Frame(images[seq % len(images)], time.monotonic(), seq, "bench")
        t0 = time.perf_counter()
        readings = perception.read(frame)
        total.append((time.perf_counter() - t0) * 1000)
        detect.append(perception.timings.detect_ms)
        classify.append(perception.timings.classify_ms)
        found.append(len(readings))
    elapsed = time.perf_counter() - started

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 3)

    return {
        "fps": round(options.frames / elapsed, 1),
        "detect_ms_p50": pct(detect, 50),
        "detect_ms_p95": pct(detect, 95),
        "classify_ms_p50": pct(classify, 50),
        "classify_ms_p95": pct(classify, 95),
        "total_ms_p50": pct(total, 50),
        "total_ms_p95": pct(total, 95),
        "rss_mb": round(peak_rss_mb(), 1),
        "faces": options.faces,
        "faces_found_mean": round(float(np.mean(found)), 2),
        "frames": options.frames,
        "size": f"{options.width}x{options.height}",
        "litert": package_version("ai-edge-litert"),
        **machine_summary(),
    }


def describe_perception_bench(result: dict[str, Any], detector: str, threads: int) -> str:
    return "\n".join(
        [
            f"perception benchmark: {result['frames']} frames at {result['size']}, "
            f"{result['faces']} face(s) per frame (found {result['faces_found_mean']} on average)",
            f"  detector {detector}, {threads} LiteRT thread(s), ai-edge-litert {result['litert']}",
            f"  machine: {result['cpu']}, {result['cores']} cores, {result['arch']}, "
            f"Python {result['python']}",
            f"  throughput  {result['fps']:.1f} frames/s",
            f"  detect      p50 {result['detect_ms_p50']:.2f} ms   "
            f"p95 {result['detect_ms_p95']:.2f} ms",
            f"  classify    p50 {result['classify_ms_p50']:.2f} ms   "
            f"p95 {result['classify_ms_p95']:.2f} ms",
            f"  total       p50 {result['total_ms_p50']:.2f} ms   "
            f"p95 {result['total_ms_p95']:.2f} ms",
            f"  peak RSS    {result['rss_mb']:.1f} MB",
        ]
    )
