"""``moodtale bench soak``: the whole appliance for N minutes on replayed frames, with the
real models, as on a device: does it stay up, stay clean and stay the same size?

The bundled sample frames loop (a happy face, a sad one, an empty room: moods change and
the reader leaves and comes back), the story keeps to a listener's pace (as with no sound
device), the narrator writes WAV files, and a client reads the page's event stream the
whole time. Measured: turns told, frames perceived, worker restarts, errors logged, the
process's resident memory and open file descriptors after warm-up and at the end.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.bench.machine import machine_summary, package_version
from appliance.bench.repeatable import bench_appliance_settings
from appliance.settings import Settings

log = logging.getLogger(__name__)

WARM_UP_S = 120.0
"""Until the first turns are told (the model loaded, caches filled) or this long."""
WARM_UP_TURNS = 3
CHECK_EVERY_S = 5.0


def rss_mb() -> float:
    """Resident memory of this process now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class ErrorCount(logging.Handler):
    """Counts what was logged at ERROR or worse (and keeps the first few, to report)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()}")


def _soak_settings(settings: Settings, state: Path, model: str | None) -> Settings:
    """The benchmarks' appliance, on the bundled sample frames."""
    bench = bench_appliance_settings(settings, state, model)
    replay = bench.camera.replay.model_copy(update={"path": None})
    camera = bench.camera.model_copy(update={"type": "replay", "replay": replay})
    return bench.model_copy(update={"camera": camera})


def run_soak_bench(settings: Settings, minutes: float, model: str | None = None) -> dict[str, Any]:
    from appliance.bench.sse_reader import SSEReader
    from appliance.daemon import Appliance

    errors = ErrorCount()
    logging.getLogger().addHandler(errors)
    with tempfile.TemporaryDirectory(prefix="moodtale-soak-") as state:
        appliance = Appliance(_soak_settings(settings, Path(state), model))
        # A listener's pace, as the appliance keeps with no sound device.
        appliance.story_loop.behind_s = appliance.reading.behind_s
        appliance.start()
        assert appliance.port is not None
        reader = SSEReader("127.0.0.1", appliance.port)
        reader.start()
        try:
            deadline = time.monotonic() + WARM_UP_S
            while appliance.teller.turn_count < WARM_UP_TURNS and time.monotonic() < deadline:
                time.sleep(1.0)
            turns_start = appliance.teller.turn_count
            frames_start = appliance.frames_perceived
            errors_start = errors.count
            rss_start, fds_start = rss_mb(), open_fds()
            started = time.monotonic()
            end = started + minutes * 60
            rss_peak = rss_start
            while time.monotonic() < end:
                time.sleep(min(CHECK_EVERY_S, max(0.0, end - time.monotonic())))
                rss_peak = max(rss_peak, rss_mb())
                reader.forget()  # it keeps reading; the bench's memory is the appliance's
                # Spoken sentences pile up as files; a device's speaker keeps none.
                for wav in sorted((Path(state) / "wav").glob("*.wav"))[:-50]:
                    wav.unlink(missing_ok=True)
            elapsed = time.monotonic() - started
            rss_end, fds_end = rss_mb(), open_fds()
            result = {
                "minutes": round(elapsed / 60, 2),
                "turns": appliance.teller.turn_count - turns_start,
                "frames": appliance.frames_perceived - frames_start,
                "worker_restarts": sum(w.restarts for w in appliance.supervisor.workers.values()),
                "errors": errors.count - errors_start,
                "first_errors": errors.first,
                "rss_start_mb": round(rss_start, 1),
                "rss_end_mb": round(rss_end, 1),
                "rss_peak_mb": round(rss_peak, 1),
                "rss_growth_pct": round((rss_end - rss_start) / rss_start * 100, 2),
                "fds_start": fds_start,
                "fds_end": fds_end,
                "events_read": reader.received,
                "reader_connected": reader.is_alive(),
                "story_state": appliance.story_loop.state,
                "model": appliance.teller.llm.name.removeprefix("local "),
                "llama_cpp_python": package_version("llama-cpp-python"),
                **machine_summary(),
            }
        finally:
            reader.close()
            appliance.shutdown()
            logging.getLogger().removeHandler(errors)
    return result


def describe_soak_bench(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"soak benchmark: {result['minutes']} minutes after warm-up, model {result['model']}, "
            f"llama-cpp-python {result['llama_cpp_python']}",
            f"  machine: {result['cpu']}, {result['cores']} cores, {result['arch']}, "
            f"Python {result['python']}",
            f"  turns told {result['turns']}, frames perceived {result['frames']}, "
            f"page events read {result['events_read']}",
            f"  worker restarts {result['worker_restarts']}, errors logged {result['errors']}",
            f"  RSS {result['rss_start_mb']} MB -> {result['rss_end_mb']} MB "
            f"({result['rss_growth_pct']:+.2f}%), peak {result['rss_peak_mb']} MB",
            f"  open file descriptors {result['fds_start']} -> {result['fds_end']}",
        ]
    )
