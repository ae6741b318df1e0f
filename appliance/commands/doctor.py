"""``moodtale doctor``: what works and what does not, in plain words, and the token."""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import uuid
from pathlib import Path

from appliance.azure_openai.settings import AzureSettings
from appliance.commands import EXIT_FAILED, EXIT_OK, Subparsers
from appliance.settings import Settings, installed_here, settings_as_toml

MIN_FREE_MB = 200
CAMERA_TIMEOUT_S = 10.0
AZURE_TIMEOUT_S = 10.0
"""At most this long for the Azure test call (shorter when azure.timeout_s is)."""


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


def check_runtimes(settings: Settings) -> tuple[bool, bool, list[str]]:
    """LiteRT reads a frame with the vision models; llama.cpp loads the story model.

    Returns (nothing needed broken, the local story model works, lines)."""
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
    if settings.story.backend == "azure":
        lines.append("note     llama.cpp not used: story.backend is azure")
        return ok, False, lines
    local = LlamaBackend(settings.story.llama, settings.models_dir)
    local_ok = False
    try:
        local.load()
        local_ok = True
        lines.append(f"ok       llama.cpp loads {local.chosen_model} ({local.load_s:.1f} s)")
        if local.choice:
            lines.append(f"note     story model auto: {local.choice}")
    except BackendError as exc:
        if settings.azure.configured and settings.story.backend != "local":
            lines.append(f"WARNING  llama.cpp: {exc.problem}; the story will come from Azure")
        else:
            ok = False
            lines.append(f"BROKEN   llama.cpp: {exc.problem}")
    finally:
        local.close()
    return ok, local_ok, lines


def _connection_problem(exc: BaseException) -> str:
    """Why a connection failed, in plain words: refused, no such host, timed out."""
    import socket

    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "no answer in time"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror) or "Name or service not known" in str(seen):
            return "host name not found"
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return "connection refused"
        if isinstance(seen, TimeoutError):
            return "no answer in time"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)


def _bad_url(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in ("UnsupportedProtocol", "InvalidURL", "LocalProtocolError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def probe_azure(settings: AzureSettings, timeout_s: float) -> BaseException | None:
    """One 1-token chat completion to the configured deployment, no retries: None when
    it is answered, else what went wrong."""
    from appliance.azure_openai.resilience import make_client

    try:
        with make_client(settings).with_options(timeout=timeout_s, max_retries=0) as client:
            client.chat.completions.create(
                model=settings.deployment,
                messages=[{"role": "user", "content": "Say ok."}],
                max_tokens=1,
            )
    except Exception as exc:
        return exc
    return None


def describe_azure_problem(
    exc: BaseException, settings: AzureSettings, timeout_s: float
) -> tuple[bool, str]:
    """(reachable and authorised anyway, what happened in plain words)."""
    import openai

    from appliance.azure_openai.resilience import retry_after_seconds

    if isinstance(exc, openai.RateLimitError):
        wait = retry_after_seconds(exc.response.headers)
        later = f"; Azure asks to wait {wait:.0f} s" if wait is not None else ""
        return True, f"reachable and authorised, but rate limited right now (429{later})"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        what = (
            f"not authorised: the key was refused ({exc.status_code}); check azure.api_key, "
            "azure.api_key_file or the azure-openai-key credential"
        )
    elif isinstance(exc, openai.NotFoundError):
        what = (
            f"deployment {settings.deployment} not found (404); check azure.deployment"
            if exc.code == "DeploymentNotFound"
            else "not found (404); check azure.endpoint, azure.deployment and azure.api_version"
        )
    elif isinstance(exc, openai.APIConnectionError) and _bad_url(exc):
        what = f"azure.endpoint is not a usable URL ({exc.__cause__ or exc})"
    elif isinstance(exc, openai.APIConnectionError):  # a timeout too
        problem = _connection_problem(exc)
        if problem == "no answer in time":
            problem = f"no answer within {timeout_s:g} s"
        what = f"unreachable ({problem})"
    elif isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        what = f"reachable, but Azure answered with a server error ({exc.status_code})"
    elif isinstance(exc, openai.APIStatusError):
        what = f"the test call was refused ({exc.status_code}: {exc.message})"
    else:  # a malformed endpoint, an unexpected answer
        what = f"cannot be called: {type(exc).__name__}: {exc}"
    return False, what


def check_azure(settings: Settings, local_ok: bool) -> tuple[bool, str]:
    """Azure, when configured, answers a tiny call. A problem with it is BROKEN only when
    the story depends on it (story.backend azure, or no working local model), else a
    WARNING: the fallback is what is lost."""
    azure = settings.azure
    backend = settings.story.backend
    needed = backend == "azure" or (backend == "auto" and not local_ok)
    if not azure.configured:
        if backend == "azure":
            return False, (
                "BROKEN   Azure OpenAI not configured, but story.backend is azure: set "
                "azure.endpoint, azure.deployment and the key"
            )
        return True, "note     Azure OpenAI not configured (no fallback)"
    timeout_s = min(azure.timeout_s, AZURE_TIMEOUT_S)
    subject = f"Azure OpenAI {azure.endpoint} deployment {azure.deployment}"
    failure = probe_azure(azure, timeout_s)
    if failure is None:
        return True, f"ok       {subject}: reachable and authorised"
    authorised, what = describe_azure_problem(failure, azure, timeout_s)
    key = azure.resolved_key()
    if key:  # never shown, whatever an error message may carry
        what = what.replace(key, "********")
    if authorised:  # busy now, but it works: not a fault
        return True, f"WARNING  {subject}: {what}"
    if needed:
        why = "story.backend is azure" if backend == "azure" else "no working local model"
        return False, f"BROKEN   {subject}: {what}; the story depends on it ({why})"
    if backend == "auto":
        lost = "the fallback will not work"
    elif azure.vision_fallback:
        lost = "the fallback for expressions will not work"
    else:
        lost = "not used anyway (story.backend is local)"
    return True, f"WARNING  {subject}: {what}; {lost}"


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


def owns(directory: Path) -> bool:
    try:
        return directory.stat().st_uid == os.geteuid()
    except OSError:
        return False


def token_line(settings: Settings) -> str:
    from appliance.cli import as_service_user
    from appliance.device_token import load_or_create_token

    try:
        return f"device token: {load_or_create_token(settings.state_dir, only_if_ours=True)}"
    except PermissionError:
        return (
            f"device token: in {settings.state_dir}, which only the service user reads: "
            f"{as_service_user(['doctor'])}"
        )
    except OSError as exc:
        return f"device token: cannot be kept in {settings.state_dir} ({exc.strerror})"


def run_doctor(settings: Settings, args: argparse.Namespace) -> int:
    if installed_here() and not owns(settings.state_dir):
        from appliance.cli import as_service_user

        print(
            "note: this checks what you can reach; to check what the service sees: "
            f"{as_service_user(['doctor'])}\n"
        )
    healthy = True
    models_ok, lines = check_models(settings)
    healthy &= models_ok
    camera_ok, camera_line = check_camera(settings)
    healthy &= camera_ok
    storage_ok, storage_line = check_storage(settings)
    healthy &= storage_ok
    runtimes_ok, local_ok, runtime_lines = check_runtimes(settings)
    healthy &= runtimes_ok
    azure_ok, azure_line = check_azure(settings, local_ok)
    healthy &= azure_ok
    lines += [*runtime_lines, azure_line, camera_line, check_sound(settings), storage_line]
    web = settings.web
    lines.append(f"ok       web page on {web.host}:{web.port}" if web.enabled else "ok  web off")
    print("\n".join(lines))
    print(f"\n{token_line(settings)}")
    if not args.no_settings:
        print("\n# effective settings (secrets masked)")
        print(settings_as_toml(settings), end="")
    print("\nall good" if healthy else "\nsomething needed is broken (see BROKEN above)")
    return EXIT_OK if healthy else EXIT_FAILED
