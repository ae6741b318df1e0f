"""The appliance: every stage built from settings, wired, supervised, shut down cleanly.

    camera ──newest frame──▶ perception + mood ──Mood──▶ story loop ──StoryEvent──▶ narrator
                                   │                                      │
                                   └──────────────▶ event hub ◀───────────┘──▶ web page (SSE)

Threads: capture (owns the frame source), perception (owns the LiteRT models and the
mood tracker), story (owns the storyteller and, through it, llama.cpp), the narrator's
own two, and the web server's event loop. The main thread supervises: it restarts a dead
worker with backoff, feeds the systemd watchdog while every worker is alive, and on
SIGTERM/SIGINT stops everything within a few seconds.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.camera import build_frame_source
from appliance.camera.newest_frame import NewestFrameSlot
from appliance.camera.source import FrameSource, SourceExhaustedError
from appliance.device_token import load_or_create_token
from appliance.events import Mood, StoryEvent
from appliance.fleet.publisher import FleetPublisher
from appliance.heap_tuning import keep_big_buffers_off_the_heap
from appliance.mood import MoodTracker
from appliance.plain_status import (
    CAMERA_LOST,
    SEE_JOURNAL,
    disk_trouble,
    lan_backend,
    lan_speech,
    pause_reason,
    source_kind,
)
from appliance.service_notify import ServiceNotifier
from appliance.settings import Settings
from appliance.speech import Narrator, build_narrator
from appliance.story import StoryBackends, Storyteller, build_backends, open_store
from appliance.story.store import StoryStore
from appliance.story.turn_policy import PAUSED_FROM_PAGE, ReadingPace, StoryLoop
from appliance.supervision import Supervisor, Worker, stop_on_signals
from appliance.vision import Perception, build_perception
from appliance.web.app import create_app
from appliance.web.connections import ConnectionBudget
from appliance.web.event_hub import EventHub
from appliance.web.page_voice import AudioClips, PageVoice, WithPage

log = logging.getLogger(__name__)

SHUTDOWN_S = 4.0
"""Everything stops within this (systemd and the issue allow 5 s)."""
STATUS_EVERY_S = 2.0
CAMERA_RETRY_S = (1.0, 30.0)
"""A lost camera is tried again after 1 s, then 2, 4, ... up to every 30 s."""
PERCEPTION_IDLE_S = 0.2
"""How long perception waits for a frame before ageing the mood without one."""


@dataclass
class CameraState:
    source: str = "starting"
    state: str = "starting"
    frames: int = 0
    problem: str | None = None
    """The detail (for the journal), e.g. the device's error; the page gets plain words."""
    retry_in_s: float = 0.0


def mood_data(mood: Mood) -> dict[str, Any]:
    return {
        "label": mood.dominant,
        "confidence": round(mood.confidence, 3),
        "emotions": {k: round(v, 3) for k, v in mood.emotions.as_dict().items()},
        "faces": mood.faces,
        "engaged": mood.engaged,
        "shift": mood.shift,
        "away_s": round(mood.away_s, 1),
        "at": time.time(),
        "t": mood.t,
    }


def label_of(mood: Mood | None) -> str | None:
    return mood.dominant if mood is not None else None


def lan_address() -> str:
    """The address phones on the LAN reach this device by (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: routing decides, nothing is sent
            return str(probe.getsockname()[0])
    except OSError:
        return socket.gethostname()


def _device_token(settings: Settings) -> tuple[str, str | None]:
    """The device token, and why it cannot be kept (None when it is)."""
    try:
        return load_or_create_token(settings.state_dir), None
    except OSError as exc:
        # The page still works; the token just changes at the next start.
        problem = (
            f"the device token cannot be saved in {settings.state_dir} ({exc.strerror}); "
            "a new one is made at each start"
        )
        log.warning("%s", problem)
        return secrets.token_urlsafe(18), problem


class Appliance:
    """Builds and runs the whole appliance; also what the web page sees of it."""

    def __init__(
        self,
        settings: Settings,
        *,
        make_source: Callable[[], FrameSource] | None = None,
        narrator: Narrator | None = None,
        notifier: ServiceNotifier | None = None,
    ) -> None:
        keep_big_buffers_off_the_heap()  # before the models load: weeks without heap creep
        self.settings = settings
        self._built = False
        """Events that arrive while the appliance is still being built (the local model
        failing to load) are not published: ``start`` publishes the whole status."""
        self.stop = threading.Event()
        self.started_at = time.monotonic()
        self.notifier = notifier or ServiceNotifier()
        self._make_source = make_source or (lambda: build_frame_source(settings.camera))
        self.token, self.token_problem = _device_token(settings)
        self.hub = EventHub()
        self.slot = NewestFrameSlot()
        self.camera = CameraState()
        self.frames_perceived = 0
        self.last_perception_ms = 0.0
        self.mood: Mood | None = None
        self.timeline: deque[dict[str, Any]] = deque(maxlen=settings.web.timeline_minutes * 120)
        self.current_turn: int | None = None
        self.current_text = ""
        self.mood_listeners: list[Callable[[Mood], None]] = []
        # Built in order of what can fail for a reason the user must fix (models).
        self.perception: Perception = build_perception(
            settings.vision, settings.models_dir, azure=settings.azure
        )
        self.tracker = MoodTracker(settings.mood)
        self.fleet: FleetPublisher | None = None
        self.fleet_problem: str | None = None
        if settings.fleet.enabled:
            try:
                self.fleet = FleetPublisher(settings.fleet, settings.state_dir)
            except OSError as exc:
                # Its spool needs the state directory: without it the rest still runs.
                self.fleet_problem = (
                    f"fleet mode is off: its spool cannot be kept in {settings.state_dir} "
                    f"({exc.strerror})"
                )
                log.warning("%s", self.fleet_problem)
        self.clips = AudioClips()
        self.narrator = narrator or build_narrator(
            settings.speech,
            page=PageVoice(self.hub, self.clips),
            to_page=lambda speaker: WithPage(speaker, self.hub, self.clips),
        )
        self.reading = ReadingPace(settings.story.reading_wpm)
        self.store: StoryStore = open_store(settings.state_dir)
        self.backends: StoryBackends = build_backends(
            settings.story, settings.azure, settings.models_dir, emit=self._on_story_event
        )
        self.teller = Storyteller(
            settings.story,
            self.backends,
            self.store,
            n_ctx=settings.story.llama.n_ctx,
            emit=self._on_story_event,
        )
        self.teller.skip_unheard = self._skip_the_unheard
        self.story_loop = StoryLoop(
            self.teller,
            settings.story,
            behind_s=self._behind_s,
            max_ahead_s=settings.speech.max_ahead_s,
            on_state=lambda state, reason: self.publish_status(),
        )
        self.supervisor = Supervisor(
            self.stop, on_change=lambda worker, what: self.publish_status()
        )
        self.supervisor.add(Worker("capture", self._capture, stale_after_s=30.0))
        self.supervisor.add(Worker("perception", self._perceive, stale_after_s=30.0))
        # A turn beats once per turn: allow a slow model a long one.
        self.supervisor.add(Worker("story", self._tell, stale_after_s=180.0))
        self._story_beat: Callable[[], None] = lambda: None
        self._shut_down = False
        self.web_server: Any = None
        self.web_thread: threading.Thread | None = None
        self.port: int | None = None
        self.connections: ConnectionBudget | None = None
        self._built = True

    # -- workers -------------------------------------------------------------------------

    def _capture(self, stop: threading.Event, beat: Callable[[], None]) -> None:
        """Read the camera; when it fails (unplugged, a driver error, a replay gone),
        say "camera lost", pause the story, and try again with backoff until it is back."""
        backoff = CAMERA_RETRY_S[0]
        while not stop.is_set():
            source = self._make_source()
            self.camera.source = source.name
            try:
                source.open()
                self._camera_back()
                backoff = CAMERA_RETRY_S[0]
                while not stop.is_set():
                    self.slot.put(source.read())
                    self.camera.frames += 1
                    beat()
            except SourceExhaustedError:
                self.camera.state = "replay ended"
                self.publish_status()
                # Nothing more will come; stay alive (and beating) so this is not a failure.
                while not stop.wait(1.0):
                    beat()
            except Exception as exc:  # every camera failure is retried, none is fatal
                self._camera_lost(exc, backoff)
                deadline = time.monotonic() + backoff
                while not stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                    beat()
                    if time.monotonic() >= deadline:
                        break
                backoff = min(backoff * 2, CAMERA_RETRY_S[1])
            finally:
                with contextlib.suppress(Exception):
                    source.close()

    def _camera_lost(self, exc: Exception, retry_in_s: float) -> None:
        first = self.camera.state != "lost"
        self.camera.state = "lost"
        self.camera.problem = f"camera lost ({exc}); trying again every {retry_in_s:.0f} s"
        self.camera.retry_in_s = retry_in_s
        if first:
            log.warning("camera lost: %s", exc)
        else:
            log.debug("camera still lost: %s", exc)
        self.story_loop.hold(CAMERA_LOST)
        self.publish_status()

    def _camera_back(self) -> None:
        if self.camera.state == "lost":
            log.info("camera is back")
        self.camera.state, self.camera.problem = "delivering frames", None
        self.story_loop.hold(None)
        self.publish_status()

    def _perceive(self, stop: threading.Event, beat: Callable[[], None]) -> None:
        while not stop.is_set():
            beat()
            frame = self.slot.take(timeout=PERCEPTION_IDLE_S)
            if frame is None:
                mood = self.tracker.tick(time.monotonic())
            else:
                readings = self.perception.read(frame)
                if self.fleet is not None:
                    self.fleet.observe(readings, time.time())  # memory only, never waits
                self.frames_perceived += 1
                self.last_perception_ms = self.perception.timings.total_ms
                mood = self.tracker.update(readings, frame.t)
            if mood is not None:
                self._on_mood(mood)

    def _tell(self, stop: threading.Event, beat: Callable[[], None]) -> None:
        # The story thread beats between turns and with every sentence it releases; a
        # turn that produces nothing for ``stale_after_s`` counts as hung.
        self._story_beat = beat
        self.story_loop.run(stop, beat)

    # -- events ------------------------------------------------------------------------

    def _on_mood(self, mood: Mood) -> None:
        self.mood = mood
        data = mood_data(mood)
        last = self.timeline[-1] if self.timeline else None
        if (
            last is None
            or data["at"] - last["at"] >= 1.0
            or last["label"] != data["label"]
            or last["engaged"] != data["engaged"]
        ):
            self.timeline.append(
                {"at": data["at"], "label": data["label"], "engaged": data["engaged"]}
            )
        self.hub.publish("mood", data)
        self.story_loop.on_mood(mood)
        for listener in self.mood_listeners:
            listener(mood)

    def _on_story_event(self, event: StoryEvent) -> None:
        if not self._built:
            return
        self._story_beat()
        if event.kind == "token":
            if self.current_turn is None:
                self.current_turn = event.turn_id
            self.current_text += event.text
            self.hub.publish("token", {"turn": event.turn_id, "text": event.text})
        elif event.kind == "sentence":
            self.narrator.say(event.text, event.turn_id, label_of(event.mood or self.mood))
            self.reading.add(event.text, event.turn_id)
            self.hub.publish("sentence", {"turn": event.turn_id, "text": event.text})
        elif event.kind == "turn_started":
            self.current_turn, self.current_text = event.turn_id, ""
            self.hub.publish(
                "turn",
                {
                    "phase": "started",
                    "turn": event.turn_id,
                    "mood_label": label_of(event.mood),
                },
            )
        elif event.kind == "turn_finished":
            self.current_turn, self.current_text = None, ""
            log.info(
                "turn %s (%s): %s",
                event.turn_id,
                label_of(event.mood) or "no mood",
                event.text,
            )
            self.hub.publish(
                "turn",
                {
                    "phase": "finished",
                    "turn": event.turn_id,
                    "text": event.text,
                    "mood_label": label_of(event.mood),
                    "ending": event.status.get("beat") == "ending",
                },
            )
        elif event.kind == "status":
            message = event.status.get("message", "")
            if message == "new story":
                self.current_turn, self.current_text = None, ""
                # The old story is left as it was told; the new one starts from silence.
                self.narrator.clear()
                self.reading.reset()
                self.hub.publish("turn", {"phase": "new_story", "turn": None})
            elif message == "turn abandoned":
                self.current_turn, self.current_text = None, ""
            self.publish_status()

    def _skip_the_unheard(self) -> None:
        """The narrator finishes the sentence it is speaking and skips the rest; a reader
        with no voice to hear goes to the newest text likewise (the reading pace keeps no
        backlog). What was skipped was never heard (with speech off: never begun to be
        read), so it leaves the story: the stored turn, the model's context, and the page
        (marked as it goes). Called by the storyteller (``skip_unheard``) as a turn that
        answers a shift begins, before its number, beat or prompt is decided."""
        unheard = self.narrator.clear()
        unread = self.reading.reset()
        skipped = unheard if self.narrator.speaking else unread
        for change in self.teller.unsay(skipped) if skipped else []:
            self.hub.publish("unsaid", change)

    def _behind_s(self) -> float:
        if self.narrator.speaking:
            return float(self.narrator.behind_s)
        return self.reading.behind_s()

    # -- what the page sees -------------------------------------------------------------

    def problems(self, backend: dict[str, str], speech: dict[str, str]) -> list[str]:
        """What needs attention, in plain words for the LAN; each detail (a path, an error
        text) is in the journal instead, said once by the part that met it."""
        problems = []
        if self.camera.problem:
            problems.append(f"camera lost; trying again every {self.camera.retry_in_s:.0f} s")
        loop = self.story_loop
        if loop.state == "paused" and loop.reason and loop.reason != PAUSED_FROM_PAGE:
            problems.append(f"The story is paused: {pause_reason(loop.reason)}.")
        if self.store.problem:
            problems.append(
                "Storage: the story cannot be saved on the device now "
                f"({disk_trouble(self.store.problem)}); it goes on in memory and is written "
                "back when the disk can take it."
            )
        if self.token_problem:
            problems.append(
                "Storage: the device token cannot be saved "
                f"({disk_trouble(self.token_problem)}); a new one is made at each start."
            )
        if backend.get("kind") == "azure":
            problems.append("The local story model is not in use; Azure OpenAI tells the story.")
        if backend.get("local_problem"):
            problems.append(f"Local story model: it cannot be used now ({SEE_JOURNAL}).")
        if speech.get("problem"):
            problems.append(
                "Speech: text only (no sound device)."
                if "no sound device" in speech["problem"]
                else f"Speech: the voice or the speaker is not working ({SEE_JOURNAL})."
            )
        fleet_problem = self.fleet.problem() if self.fleet is not None else self.fleet_problem
        if fleet_problem:
            problems.append(
                "fleet mode is off: the state directory cannot hold its spool."
                if self.fleet is None
                else f"Fleet: mood summaries are not getting through ({SEE_JOURNAL})."
            )
        for worker in self.supervisor.workers.values():
            if not worker.alive and not self.stop.is_set() and worker.thread is not None:
                problems.append(f"The {worker.name} worker stopped; restarting.")
        return problems

    def status(self) -> dict[str, Any]:
        backend = self.backends.status()
        speech = self.narrator.status()
        uptime = time.monotonic() - self.started_at
        return {
            "camera": {
                "source": source_kind(self.camera.source),
                "state": self.camera.state,
                "frames": self.camera.frames,
                "dropped": self.slot.dropped,
            },
            "perception": {
                "frames": self.frames_perceived,
                "fps": round(self.frames_perceived / uptime, 1) if uptime > 0 else 0.0,
                "last_ms": round(self.last_perception_ms, 2),
            },
            "mood": {"mode": self.settings.mood.mode},
            "story": {
                "state": self.story_loop.state,
                "reason": pause_reason(self.story_loop.reason) if self.story_loop.reason else None,
                "story_id": self.teller.story.id,
                "turns": self.teller.turn_count,
                "turns_told": self.story_loop.turns_told,
                "cuts": self.story_loop.cuts,
                "guard_counts": dict(self.teller.guard_counts),
                **lan_backend(backend),
            },
            "speech": {**lan_speech(speech), "behind_s": round(self._behind_s(), 1)},
            "storage": {"saved": not self.store.in_memory},
            "workers": {
                n: {"alive": w.alive, "restarts": w.restarts}
                for n, w in self.supervisor.workers.items()
            },
            "web": {
                "clients": self.hub.client_count,
                "dropped": self.hub.clients_dropped,
                **(self.connections.describe() if self.connections is not None else {}),
            },
            "fleet": self._fleet_status(),
            "problems": self.problems(backend, speech),
            "uptime_s": round(uptime, 1),
        }

    def _fleet_status(self) -> dict[str, Any]:
        """The fleet publisher's counts; where rows land (a folder, a storage account)
        and its errors stay in the journal."""
        if self.fleet is None:
            return {"enabled": False}
        status = self.fleet.status()
        status["landing"] = "Azure Blob" if "Blob" in str(status.get("landing")) else "folder"
        status.pop("last_error", None)
        return status

    def publish_status(self) -> None:
        self.hub.publish("status", self.status())

    def story(self) -> dict[str, Any]:
        story = self.teller.story
        turns = self.store.turns(story.id)
        return {
            "id": story.id,
            "premise": story.premise,
            "genre": story.genre,
            "audience": story.audience,
            "turns": [
                {
                    "idx": t.idx,
                    "text": t.text,
                    "mood_label": t.mood_label,
                    "backend": t.backend,
                    "ending": t.beat.get("kind") == "ending",
                }
                for t in turns
            ],
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": self.status(),
            "mood": mood_data(self.mood) if self.mood else None,
            "timeline": list(self.timeline),
            "current": {"turn": self.current_turn, "text": self.current_text},
        }

    def new_story(self) -> dict[str, Any]:
        self.story_loop.request_new_story()
        return {"requested": True}

    def pause(self) -> None:
        self.story_loop.pause()
        self.publish_status()

    def resume(self) -> None:
        self.story_loop.resume()
        self.publish_status()

    def audio_clip(self, seq: int) -> bytes | None:
        return self.clips.get(seq)

    def healthy(self) -> tuple[bool, str]:
        dead = [w.name for w in self.supervisor.workers.values() if not w.alive]
        if dead:
            return False, f"not running: {', '.join(dead)}"
        return True, "every worker is running"

    # -- running ------------------------------------------------------------------------

    def start_web(self) -> None:
        import uvicorn

        from appliance.web.connections import guarded_h11
        from appliance.web.listen import listening_socket

        web = self.settings.web
        app = create_app(
            self,
            self.hub,
            self.token,
            max_event_clients=web.max_event_clients,
            max_event_clients_per_address=web.max_event_clients_per_address,
            allowed_hosts=tuple(web.allowed_hosts),
        )
        sock = listening_socket(web)
        self.port = int(sock.getsockname()[1])
        self.connections = ConnectionBudget(
            max_total=web.max_connections,
            max_per_address=web.max_connections_per_address,
            header_timeout_s=web.header_timeout_s,
        )
        config = uvicorn.Config(
            app,
            http=guarded_h11(self.connections),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
            # The connection budget refuses first (429/503, closed at once); this is
            # uvicorn's own ceiling behind it.
            limit_concurrency=web.max_connections + web.max_event_clients + 64,
        )
        self.web_server = uvicorn.Server(config)
        self.web_thread = threading.Thread(
            target=self.web_server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
        )
        self.web_thread.start()
        deadline = time.monotonic() + 10
        while not self.web_server.started and time.monotonic() < deadline:
            if not self.web_thread.is_alive():
                raise RuntimeError("the web server failed to start (see the log above)")
            time.sleep(0.02)

    def url(self) -> str:
        host = self.settings.web.host
        shown = lan_address() if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{self.port}/"

    def start(self) -> None:
        if self.settings.web.enabled:
            self.start_web()
        self.supervisor.start()
        self.publish_status()

    def run_until_stopped(self) -> None:
        """The main thread's loop: supervise, notify systemd, publish status."""
        watchdog_every = (self.notifier.watchdog_s or 0) / 2
        next_watchdog = 0.0
        next_status = 0.0
        self.notifier.ready(f"telling stories; page at {self.url() if self.port else 'off'}")
        while not self.stop.wait(0.25):
            self.supervisor.check()
            now = time.monotonic()
            if watchdog_every and now >= next_watchdog and self.supervisor.all_fresh():
                self.notifier.watchdog()
                next_watchdog = now + watchdog_every
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                self.publish_status()
                self.notifier.status(
                    f"story {self.story_loop.state}; camera {self.camera.state}; "
                    f"{self.teller.turn_count} turns"
                )

    def shutdown(self) -> None:
        """Stop within ``SHUTDOWN_S``: drop the unfinished turn (never stored half done),
        stop speaking, close the camera, close the web streams, persist and exit."""
        if self._shut_down:
            return
        self._shut_down = True
        log.info("stopping")
        self.notifier.stopping()
        self.stop.set()
        self.story_loop.stop_turn()
        self.slot.close()
        self.narrator.close(timeout=1.5)
        self.hub.close()
        if self.web_server is not None:
            self.web_server.should_exit = True
        self.supervisor.join(timeout=2.0)
        if self.web_thread is not None:
            self.web_thread.join(timeout=1.5)
        if self.fleet is not None:
            self.fleet.close(timeout=0.5)  # the rest of the spool goes at the next start
        self.backends.close()
        self.store.close()
        log.info("stopped")


def run_appliance(settings: Settings) -> int:
    appliance = Appliance(settings)
    stop_on_signals(appliance.stop)
    try:
        appliance.start()
        # The capture thread names its source once it has built it (auto looks for a
        # camera first): give it a moment so the line below says which.
        deadline = time.monotonic() + 5
        while appliance.camera.source == "starting" and time.monotonic() < deadline:
            time.sleep(0.05)
        url = appliance.url() if appliance.port else None
        speech = appliance.narrator.status()
        print(f"Moodtale is running. Camera: {appliance.camera.source}.", flush=True)
        if url:
            print(f"Open {url} on a phone or laptop on this network.", flush=True)
        print(f"Speech: {speech.get('summary', '')}.", flush=True)
        # The token is a secret: shown on a terminal, never written to the journal.
        if sys.stdout.isatty():
            print(f"Device token (for New story / Pause): {appliance.token}", flush=True)
        else:
            print("Device token: run `moodtale doctor` to see it.", flush=True)
        appliance.run_until_stopped()
    finally:
        appliance.shutdown()
    return 0
