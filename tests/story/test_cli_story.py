"""The story commands as a user runs them, in child processes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli_process import moodtale, moodtale_env, start_moodtale

SMOL = "smollm2-135m-instruct"


def story_env(state: Path, **more: str) -> dict[str, str]:
    return moodtale_env(
        MOODTALE_STATE_DIR=str(state),
        MOODTALE_STORY__LLAMA__MODEL=SMOL,
        MOODTALE_STORY__LLAMA__TEMPERATURE="0",
        MOODTALE_STORY__LLAMA__SEED="42",
        MOODTALE_STORY__LLAMA__N_CTX="1024",
        **more,
    )


def test_next_list_show_new_export(tmp_path: Path) -> None:
    env = story_env(tmp_path / "state")
    told = moodtale("story", "next", "--mood", "happy", "--turns", "2", env=env)
    assert told.returncode == 0, told.stderr
    printed = [line for line in told.stdout.splitlines() if line.strip()]
    assert len(printed) == 2
    listing = moodtale("story", "list", env=env)
    assert "current" in listing.stdout and "2 turns" in listing.stdout
    shown = moodtale("story", "show", env=env)
    assert shown.stdout.startswith("# Story 1")
    assert printed[0].strip() in shown.stdout
    out = tmp_path / "story.json"
    exported = moodtale("story", "export", "--format", "json", "--out", str(out), env=env)
    assert exported.returncode == 0
    data = json.loads(out.read_text())
    assert [t["idx"] for t in data["turns"]] == [0, 1]
    assert data["turns"][0]["mood_label"] == "happy"
    assert moodtale("story", "new", env=env).stdout.strip() == "story 2 started"
    assert "ended" in moodtale("story", "list", env=env).stdout
    assert moodtale("story", "show", "7", env=env).returncode == 1


def test_killed_mid_turn_keeps_every_finished_turn_and_no_partial_one(tmp_path: Path) -> None:
    """SIGKILL in the middle of a turn, three times over: every stored turn is whole,
    the database is intact, and the story carries on from the last finished turn."""
    state = tmp_path / "state"
    env = story_env(state)
    for _round in range(3):
        process = start_moodtale(
            "story", "next", "--mood", "sad", "--turns", "50", env=env, stderr=subprocess.DEVNULL
        )
        assert process.stdout is not None
        # Wait until a turn is being written: two finished lines, and text on the third.
        fd = process.stdout.fileno()
        os.set_blocking(fd, False)
        seen = b""
        deadline = time.monotonic() + 180  # generous: a loaded machine is slow
        while time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError):
                seen += os.read(fd, 65536)
            lines = seen.split(b"\n")
            if len(lines) >= 3 and lines[-1].strip():
                break
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    db = sqlite3.connect(state / "stories.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    turns = db.execute("SELECT idx, text FROM turns ORDER BY idx").fetchall()
    assert [idx for idx, _ in turns] == list(range(len(turns)))
    assert len(turns) >= 6
    for _, text in turns:
        assert text.rstrip("\"'”’)").endswith((".", "!", "?", "…"))
    db.close()
    more = moodtale("story", "next", "--mood", "happy", env=env)
    assert more.returncode == 0
    db = sqlite3.connect(state / "stories.sqlite3")
    assert db.execute("SELECT MAX(idx) FROM turns").fetchone()[0] == len(turns)


def test_the_story_is_paused_not_crashed_without_a_model(tmp_path: Path) -> None:
    env = story_env(
        tmp_path / "state", MOODTALE_MODELS_DIR=str(tmp_path / "empty"), MOODTALE_LOG_LEVEL="ERROR"
    )
    result = moodtale("story", "next", env=env)
    assert result.returncode == 1
    assert "the story is paused" in result.stderr
    assert "moodtale models fetch smollm2-135m-instruct" in result.stderr


def test_bench_story_json(tmp_path: Path) -> None:
    result = moodtale(
        "bench", "story", "--json", "--model", SMOL, "--turns", "3", env=story_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    for key in (
        "load_s",
        "ttft_cold_ms",
        "ttft_warm_ms",
        "tokens_per_s",
        "raw_tokens_per_s",
        "overhead_ratio",
        "rss_mb",
    ):
        assert isinstance(report[key], int | float), key
    assert report["model"] == SMOL
    assert report["tokens_per_s"] > 0 and report["raw_tokens_per_s"] > 0
    # A warm turn reads only what is new since the last one: some tokens, not the whole
    # prompt again (the instruction and beat at least; at most the context).
    assert 10 < report["prompt_tokens_read_warm"] < 1024


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def test_models_add_by_path_and_url(
    tmp_path: Path, models_dir: Path, file_server: tuple[str, Path]
) -> None:
    models = tmp_path / "models"
    env = moodtale_env(MOODTALE_MODELS_DIR=str(models), MOODTALE_STATE_DIR=str(tmp_path / "s"))
    source = tmp_path / "my-smol.gguf"
    shutil.copy(models_dir / "SmolLM2-135M-Instruct.Q4_1.gguf", source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    added = moodtale("models", "add", "my-smol", "--path", str(source), "--sha256", digest, env=env)
    assert added.returncode == 0, added.stderr
    assert "my-smol" in moodtale("models", "list", env=env).stdout
    assert moodtale("models", "verify", "my-smol", env=env).returncode == 0
    url, root = file_server
    shutil.copy(source, root / "other.gguf")
    by_url = moodtale(
        "models", "add", "from-url", "--url", f"{url}/other.gguf", "--sha256", digest, env=env
    )
    assert by_url.returncode == 0, by_url.stderr
    assert (models / "other.gguf").is_file()
    shutil.copy(source, root / "third.gguf")
    wrong = moodtale(
        "models", "add", "bad", "--url", f"{url}/third.gguf", "--sha256", "0" * 64, env=env
    )
    assert wrong.returncode == 1
    assert "nothing was installed" in wrong.stderr
    assert "bad" not in moodtale("models", "list", env=env).stdout.split()
    told = moodtale(
        "story",
        "next",
        env={**env, "MOODTALE_STORY__LLAMA__MODEL": "from-url", "MOODTALE_STORY__LLAMA__SEED": "1"},
    )
    assert told.returncode == 0, told.stderr


def test_bench_quality_json_and_turn_lines(tmp_path: Path) -> None:
    out = tmp_path / "turns.jsonl"
    result = moodtale(
        "bench",
        "quality",
        "--json",
        "--model",
        SMOL,
        "--turns",
        "4",
        "--out",
        str(out),
        env=story_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    figures = ["turns", "broken", "novelty_mean", "novelty_min", "adherence", "turn_s_mean"]
    figures += ["lecture", "echo3", "motif_max", "same_start", "foreign", "beats_followed"]
    for key in figures:
        assert isinstance(report[key], int | float), key
    assert report["model"] == SMOL and report["turns"] == 4
    assert "ttft_warm_ms" in report
    assert isinstance(report["cast_kept"], bool)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # The 4 turns asked for, then the episode they began, told to its end.
    assert [line["mood"] for line in lines][:4] == ["happy", "happy", "sad", "sad"]
    assert report["turns_told"] == sum(1 for line in lines if line["text"] is not None)
    assert report["episodes_begun"] == report["episodes_ended"] == 1
    assert lines[-1]["beat"]["kind"] == "ending"
    assert all(set(line) >= {"mood", "instruction", "text"} for line in lines)
