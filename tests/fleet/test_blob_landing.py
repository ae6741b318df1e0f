"""An Azure Blob container as the landing, against Azurite on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from appliance.events import MoodSummary
from appliance.fleet.blob_landing import BlobLanding
from appliance.fleet.publisher import FleetPublisher
from appliance.fleet.rows import decode_landing_file, landing_file_seq
from appliance.fleet.settings import CREDENTIAL_NAME
from appliance.settings import Settings, settings_as_toml
from tests.faults.waiting import wait_until
from tests.fleet.azurite import (
    ACCOUNT_KEY,
    account_url,
    azurite_blob,
    connection_string,
    free_port,
    running_azurite,
)
from tests.fleet.conftest import fleet_settings, one_row_per_second, seconds_of

CONTAINER = "moodtale-fleet"
PREFIX = "landing/"
needs_azurite = pytest.mark.skipif(
    azurite_blob() is None, reason="Azurite is not installed (scripts/setup --dev installs it)"
)


@pytest.fixture
def azurite_port(tmp_path: Path) -> Iterator[int]:
    program = azurite_blob()
    assert program is not None
    port = free_port()
    with running_azurite(program, port, tmp_path / "azurite"):
        yield port


def blob_settings(tmp_path: Path, port: int, **changes: object) -> dict[str, object]:
    return {
        "landing": "blob",
        "landing_dir": None,
        "blob_connection_string": connection_string(port),
        "blob_container": CONTAINER,
        "blob_prefix": PREFIX,
        "blob_timeout_s": 2.0,
        **changes,
    }


def landed_blobs(port: int) -> list[tuple[str, list[MoodSummary]]]:
    """(name, rows) of each blob, in sequence order."""
    with ContainerClient.from_connection_string(connection_string(port), CONTAINER) as client:
        names = sorted(
            client.list_blob_names(), key=lambda n: landing_file_seq(n.removeprefix(PREFIX)) or -1
        )
        return [(n, decode_landing_file(client.download_blob(n).readall())) for n in names]


@needs_azurite
def test_files_land_as_blobs_named_like_files(
    tmp_path: Path, azurite_port: int, publishers: list[FleetPublisher]
) -> None:
    settings = fleet_settings(tmp_path, **blob_settings(tmp_path, azurite_port))
    publisher = FleetPublisher(settings, tmp_path / "state")
    publishers.append(publisher)
    for burst in range(3):
        one_row_per_second(publisher, range(burst * 10, (burst + 1) * 10))
        time.sleep(0.15)
    publisher.close(timeout=10)  # the container did not exist: it is created

    blobs = landed_blobs(azurite_port)
    assert len(blobs) >= 2
    assert all(name.startswith(f"{PREFIX}pi-7-") and name.endswith(".parquet") for name, _ in blobs)
    assert seconds_of([row for _, rows in blobs for row in rows]) == list(range(30))
    status = publisher.status()
    assert status["rows_published"] == 30 and status["files_pending"] == 0
    assert "Azure Blob container" in status["landing"]

    # A resend (a crash between upload and delete) overwrites the same blob.
    name = blobs[0][0]
    landing = BlobLanding(settings)
    with ContainerClient.from_connection_string(connection_string(azurite_port), CONTAINER) as c:
        data = c.download_blob(name).readall()
    landing.deliver(name.removeprefix(PREFIX), data)
    landing.close()
    assert landed_blobs(azurite_port) == blobs


@needs_azurite
def test_rows_wait_while_blob_storage_is_down_and_arrive_once_in_order(
    tmp_path: Path, publishers: list[FleetPublisher]
) -> None:
    program = azurite_blob()
    assert program is not None
    port = free_port()  # nothing listens there yet
    settings = fleet_settings(tmp_path, **blob_settings(tmp_path, port))
    publisher = FleetPublisher(settings, tmp_path / "state")
    publishers.append(publisher)
    for burst in range(3):
        one_row_per_second(publisher, range(burst * 10, (burst + 1) * 10))
        time.sleep(0.15)
    wait_until(lambda: publisher.status()["files_pending"] >= 2, 10, "files spooled")
    assert "unreachable" in publisher.status()["last_error"]
    assert "Fleet: the landing is unreachable" in (publisher.problem() or "")

    with running_azurite(program, port, tmp_path / "azurite"):
        one_row_per_second(publisher, range(30, 40))
        wait_until(lambda: publisher.status()["rows_published"] >= 39, 30, "backlog uploaded")
        publisher.close(timeout=10)
        blobs = landed_blobs(port)

    assert seconds_of([row for _, rows in blobs for row in rows]) == list(range(40))
    seqs = [landing_file_seq(name.removeprefix(PREFIX)) or 0 for name, _ in blobs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert publisher.status()["last_error"] is None


@needs_azurite
def test_an_account_url_with_the_key_from_a_systemd_credential(
    tmp_path: Path,
    azurite_port: int,
    publishers: list[FleetPublisher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / CREDENTIAL_NAME).write_text(ACCOUNT_KEY + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    settings = fleet_settings(
        tmp_path,
        **blob_settings(
            tmp_path,
            azurite_port,
            blob_connection_string=None,
            blob_account_url=account_url(azurite_port),
        ),
    )
    publisher = FleetPublisher(settings, tmp_path / "state")
    publishers.append(publisher)
    one_row_per_second(publisher, range(5))
    publisher.close(timeout=10)
    landed = [r for _, rows in landed_blobs(azurite_port) for r in rows]
    assert seconds_of(landed) == [0, 1, 2, 3, 4]


SAS = "sv=2024-11-04&ss=b&srt=co&sp=rwdlac&se=2030-01-01&sig=Zm9vYmFyU0VDUkVUc2lnbmF0dXJl"


@pytest.mark.parametrize("kind", ["connection string", "account url and SAS token"])
def test_the_blob_secret_is_never_shown(
    tmp_path: Path,
    publishers: list[FleetPublisher],
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # down: the error paths are where secrets leak
    secret: dict[str, object] = (
        {"blob_connection_string": connection_string(port)}
        if kind == "connection string"
        else {
            "blob_connection_string": None,
            "blob_account_url": account_url(port),
            "blob_key": SAS,
        }
    )
    fleet = fleet_settings(tmp_path, **blob_settings(tmp_path, port, **secret))
    settings = Settings(state_dir=tmp_path / "state", fleet=fleet)
    publisher = FleetPublisher(settings.fleet, tmp_path / "state")
    publishers.append(publisher)
    one_row_per_second(publisher, range(3))
    wait_until(lambda: publisher.status()["last_error"] is not None, 10, "a failed delivery")
    shown = "\n".join(
        [
            str(publisher.status()),
            str(publisher.problem()),
            caplog.text,
            settings_as_toml(settings),
            repr(settings),
        ]
    )
    publisher.close(timeout=1)
    assert "unreachable" in shown
    for leak in (ACCOUNT_KEY, "Zm9vYmFyU0VDUkVUc2lnbmF0dXJl", "sig="):
        assert leak not in shown
