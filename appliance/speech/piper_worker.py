# SPDX-License-Identifier: GPL-3.0-or-later
"""The Piper voice in a process of its own: ``python -m appliance.speech.piper_worker``.

This file alone imports piper-tts (GPL-3.0-or-later), so it is offered under the same
licence; the rest of Moodtale (Apache-2.0) never imports piper and talks to this program
only through its pipes, as it talks to espeak-ng. A crash here costs the appliance one
sentence (spoken by espeak-ng instead), and the narrator starts it again.

The protocol, one request at a time:

- stdout, once loaded: ``{"ready": true, "rate": 22050, "load_s": 0.8}`` and a newline;
- stdin, per sentence: ``{"text": "...", "length_scale": 1.0, "volume": 1.0}`` and a newline;
- stdout, per sentence: ``{"samples": N}`` and a newline, then N 16-bit little-endian mono
  samples; or ``{"error": "..."}`` and a newline.

Logs go to stderr (the journal). Text is never logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, BinaryIO

log = logging.getLogger("appliance.speech.piper_worker")


def answer(out: BinaryIO, header: dict[str, Any], body: bytes = b"") -> None:
    out.write(json.dumps(header).encode() + b"\n" + body)
    out.flush()


def load_voice(model: str, threads: int) -> Any:
    """The voice, its ONNX session on ``threads`` threads (0: onnxruntime's default, one per
    core, which competes with the story model for every core while it speaks)."""
    import piper

    if threads <= 0:
        return piper.PiperVoice.load(model)
    import onnxruntime  # type: ignore[import-untyped]
    from piper.config import PiperConfig
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    with open(f"{model}.json", encoding="utf-8") as config:
        settings = json.load(config)
    return piper.PiperVoice(
        config=PiperConfig.from_dict(settings),
        session=onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        ),
        espeak_data_dir=ESPEAK_DATA_DIR,
    )


def serve(model: str, threads: int, stdin: BinaryIO, stdout: BinaryIO) -> int:
    import piper

    began = time.monotonic()
    try:
        voice = load_voice(model, threads)
    except Exception as exc:
        answer(stdout, {"error": f"Piper could not load its voice: {exc}"})
        return 1
    rate = int(voice.config.sample_rate)
    answer(stdout, {"ready": True, "rate": rate, "load_s": round(time.monotonic() - began, 3)})
    for line in stdin:
        try:
            request = json.loads(line)
            config = piper.SynthesisConfig(
                length_scale=float(request.get("length_scale", 1.0)),
                volume=float(request.get("volume", 1.0)),
            )
            audio = b"".join(
                chunk.audio_int16_bytes for chunk in voice.synthesize(str(request["text"]), config)
            )
        except Exception as exc:  # one bad sentence: say so, and wait for the next
            log.warning("piper worker: a sentence failed: %s", type(exc).__name__)
            answer(stdout, {"error": f"{type(exc).__name__}: {exc}"})
            continue
        answer(stdout, {"samples": len(audio) // 2}, audio)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the voice (.onnx, .onnx.json beside it)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX threads (0: one per core)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    return serve(args.model, args.threads, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
