"""Loading .tflite models with LiteRT (ai-edge-litert), or tflite-runtime where that is
what the device has."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from appliance.model_files import ModelEntry, ModelFileError

log = logging.getLogger(__name__)


class LiteRTUnavailableError(RuntimeError):
    pass


def interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise LiteRTUnavailableError(
                "no LiteRT runtime: install ai-edge-litert (scripts/run does) or tflite-runtime"
            ) from None
    return Interpreter


def load_interpreter(entry: ModelEntry, models_dir: Path, threads: int) -> Any:
    """An allocated interpreter for a manifest model.

    The sha256 is checked first: a truncated or foreign flatbuffer can crash the
    runtime outright instead of raising, and a checked file fails with a message that
    names it and the command that fixes it.
    """
    path = entry.require(models_dir)
    interpreter_type = interpreter_class()
    try:
        interpreter = interpreter_type(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(entry.name, path, f"could not be loaded by LiteRT ({exc})") from exc
    log.debug("loaded %s with %d thread(s)", entry.name, threads)
    return interpreter
