"""``moodtale doctor``: what works and what does not, in plain words, and the token."""

from __future__ import annotations

import argparse
import shutil
import threading
import uuid

from appliance.commands import EXIT_FAILED, EXIT_OK, Subparsers
from appliance.settings import Settings, settings_as_toml

MIN_FREE_MB = 200
CAMERA_TIMEOUT_S = 10.0


def register(commands: Subparsers) -> None:
    doctor = commands.add_parser(
        "doctor", help="check camera, models, sound and storage; show the device token"
    )
    doctor.add_argument(
        "--no-settings", action="store_true", help="do not print the effective settings"
    )
    doctor.set_defaults(handler=run_doctor)


def check_models(settings: Settings) -> tuple[bool, list[str]]:
    from appliance.model_files import ModelState, load_manifest

    manifest = load_manifest(models_dir=settings.models_dir)
    wanted = settings.story.llama.model
    ok, lines = True, []
    for entry in manifest:
        state = entry.state_in(settings.models_dir)
        needed = not entry.optional or entry.name == wanted
        if state is ModelState.MISSING and not needed:
            continue
        if state is ModelState.OK:
            lines.append(f"ok       model {entry.name}")
        else:
            ok = ok and not needed
            lines.append(
                f"BROKEN   model {entry.name} is {state.value}; "
                f"fix it with: moodtale models fetch {entry.name}"
            )
    if wanted.endswith(".gguf"):
        lines.append(f"note     story model is a file path: {wanted}")
    return ok, lines


def check_camera(settings: Settings) -> tuple[bool, str]:
    from appliance.camera import build_frame_source

    result: list[str] = []

    def probe() -> None:
        try:
            source = build_frame_source(settings.camera)
            try:
                source.open()
                frame = source.read()
                result.append(f"ok       camera {source.name}: {frame.width}x{frame.height}")
            finally:
                source.close()
        except Exception as exc:
            result.append(f"BROKEN   camera: {exc}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(CAMERA_TIMEOUT_S)
    if not result:
        return False, f"BROKEN   camera: no frame within {CAMERA_TIMEOUT_S:.0f} s"
    return result[0].startswith("ok"), result[0]


def check_runtimes(settings: Settings) -> tuple[bool, list[str]]:
    """LiteRT reads a frame with the vision models; llama.cpp loads the story model."""
    import time

    import numpy as np

    from appliance.events import Frame
    from appliance.story.llama_backend import LlamaBackend
    from appliance.story.llm import BackendError
    from appliance.vision import build_perception

    ok, lines = True, []
    try:
        perception = build_perception(settings.vision, settings.models_dir)
        blank = np.zeros((480, 640, 3), dtype=np.uint8)
        perception.read(Frame(image=blank, t=time.monotonic(), seq=1, source="doctor"))
        lines.append("ok       LiteRT runs the face and expression models")
    except Exception as exc:
        ok = False
        lines.append(f"BROKEN   LiteRT: {exc}")
    local = LlamaBackend(settings.story.llama, settings.models_dir)
    try:
        local.load()
        lines.append(
            f"ok       llama.cpp loads {settings.story.llama.model} ({local.load_s:.1f} s)"
        )
    except BackendError as exc:
        if settings.azure.configured and settings.story.backend != "local":
            lines.append(f"WARNING  llama.cpp: {exc.problem}; the story will come from Azure")
        else:
            ok = False
            lines.append(f"BROKEN   llama.cpp: {exc.problem}")
    finally:
        local.close()
    return ok, lines


def check_sound(settings: Settings) -> str:
    from appliance.speech import sound_device_present

    espeak = shutil.which("espeak-ng")
    device = sound_device_present()
    if settings.speech.output == "none" or settings.speech.engine == "silent":
        return "ok       speech off (text only), as configured"
    if not espeak:
        return "WARNING  espeak-ng is not installed: text only (apt install espeak-ng)"
    if settings.speech.output == "wav":
        return f"ok       speech to WAV files in {settings.speech.wav_dir}"
    if not device:
        return "WARNING  no sound device: the story is shown, not spoken"
    return "ok       sound device found; the story is spoken through aplay"


def check_storage(settings: Settings) -> tuple[bool, str]:
    state = settings.state_dir
    try:
        state.mkdir(parents=True, exist_ok=True)
        probe = state / f".doctor-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return False, f"BROKEN   state directory {state} is not writable: {exc.strerror}"
    free_mb = shutil.disk_usage(state).free / 1e6
    if free_mb < MIN_FREE_MB:
        return False, f"BROKEN   only {free_mb:.0f} MB free for {state}"
    return True, f"ok       state directory {state} ({free_mb / 1000:.1f} GB free)"


def run_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from appliance.device_token import load_or_create_token

    healthy = True
    models_ok, lines = check_models(settings)
    healthy &= models_ok
    camera_ok, camera_line = check_camera(settings)
    healthy &= camera_ok
    storage_ok, storage_line = check_storage(settings)
    healthy &= storage_ok
    runtimes_ok, runtime_lines = check_runtimes(settings)
    healthy &= runtimes_ok
    lines += [*runtime_lines, camera_line, check_sound(settings), storage_line]
    if settings.azure.configured:
        lines.append(f"ok       Azure OpenAI configured: {settings.azure.endpoint}")
    else:
        lines.append("ok       Azure OpenAI not configured (optional fallback)")
    web = settings.web
    lines.append(f"ok       web page on {web.host}:{web.port}" if web.enabled else "ok  web off")
    print("\n".join(lines))
    if storage_ok:
        print(f"\ndevice token: {load_or_create_token(settings.state_dir)}")
    if not args.no_settings:
        print("\n# effective settings (secrets masked)")
        print(settings_as_toml(settings), end="")
    print("\nall good" if healthy else "\nsomething needed is broken (see BROKEN above)")
    return EXIT_OK if healthy else EXIT_FAILED
