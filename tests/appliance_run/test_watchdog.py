"""The systemd watchdog is fed only while every worker beats: a camera read that hangs
stops the pings (systemd then restarts the service), as the unit's WatchdogSec= expects."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from appliance.camera.image_files import read_rgb
from appliance.camera.replay import SAMPLE_FRAMES_DIR
from appliance.daemon import Appliance
from appliance.events import Frame
from appliance.service_notify import ServiceNotifier
from tests.appliance_run.conftest import HAPPY, appliance_settings, replay_dir

GOOD_FRAMES = 30


class HangingCamera:
    """Delivers a few frames, then a read that never returns (until closed)."""

    name = "hanging camera"

    def __init__(self) -> None:
        self.image = read_rgb(SAMPLE_FRAMES_DIR / HAPPY)
        self.seq = 0
        self.hung_at = 0.0
        self.released = threading.Event()

    def open(self) -> None:
        pass

    def read(self) -> Frame:
        self.seq += 1
        if self.seq > GOOD_FRAMES:
            self.hung_at = self.hung_at or time.monotonic()
            self.released.wait()
        time.sleep(1 / 15)
        return Frame(image=self.image, t=time.monotonic(), seq=self.seq, source=self.name)

    def close(self) -> None:
        self.released.set()


def test_a_hung_worker_stops_the_watchdog_pings(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.2)
    notifier = ServiceNotifier({"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"})
    camera = HangingCamera()
    settings = appliance_settings(tmp_path, replay_dir(tmp_path, HAPPY))
    appliance = Appliance(settings, make_source=lambda: camera, notifier=notifier)
    appliance.supervisor.workers["capture"].stale_after_s = 1.0
    appliance.start()
    main = threading.Thread(target=appliance.run_until_stopped, daemon=True)
    main.start()
    pings: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while not camera.hung_at or time.monotonic() < camera.hung_at + 4:
            assert time.monotonic() < deadline
            with contextlib.suppress(TimeoutError):
                if "WATCHDOG=1" in notify.recv(4096).decode():
                    pings.append(time.monotonic())
        assert [t for t in pings if t < camera.hung_at], "fed while the camera worked"
        # At most the ping already due when the capture worker went quiet, then none.
        late = [t for t in pings if t > camera.hung_at + 1.5]
        assert late == [], f"still fed {[round(t - camera.hung_at, 2) for t in late]} s in"
        assert not appliance.supervisor.all_fresh()
    finally:
        appliance.shutdown()
        main.join(timeout=10)
        notify.close()


def test_a_notify_reader_that_stopped_reading_never_holds_up_the_service(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))  # bound, and never read: its queue fills up
    notifier = ServiceNotifier({"NOTIFY_SOCKET": str(notify_path)})
    try:
        started = time.monotonic()
        for _ in range(15):
            notifier.status("telling stories")
        notifier.stopping()
        # Before: the first send past the queue's length blocked shutdown for good.
        assert time.monotonic() - started < 2
    finally:
        notify.close()
