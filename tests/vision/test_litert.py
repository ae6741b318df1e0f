from __future__ import annotations

import sys
import types

import pytest

from appliance.vision.litert import LiteRTUnavailableError, interpreter_class


def test_ai_edge_litert_is_preferred() -> None:
    from ai_edge_litert.interpreter import Interpreter

    assert interpreter_class() is Interpreter


def test_tflite_runtime_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the device has tflite-runtime instead (e.g. an older Pi image)."""
    from ai_edge_litert.interpreter import Interpreter

    package = types.ModuleType("tflite_runtime")
    module = types.ModuleType("tflite_runtime.interpreter")
    module.Interpreter = Interpreter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", package)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", module)
    assert interpreter_class() is Interpreter


def test_no_runtime_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ai_edge_litert",
        "ai_edge_litert.interpreter",
        "tflite_runtime",
        "tflite_runtime.interpreter",
    ):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(LiteRTUnavailableError, match="install ai-edge-litert"):
        interpreter_class()
