"""``moodtale fleet run``: the cluster side of the fleet (one Spark job, one story per venue)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from appliance.commands import EXIT_FAILED, EXIT_OK, EXIT_SETUP, Subparsers, whole_number_arg
from appliance.settings import Settings

log = logging.getLogger(__name__)


def register(commands: Subparsers) -> None:
    fleet = commands.add_parser("fleet", help="the fleet job: many devices, one story per venue")
    jobs = fleet.add_subparsers(dest="fleet", required=True, metavar="JOB")
    run = jobs.add_parser("run", help="run the Spark Structured Streaming job")
    run.add_argument("--landing", required=True, help="where the devices' files land")
    run.add_argument("--tables", type=Path, required=True, help="where the Delta tables go")
    run.add_argument("--checkpoint", required=True, help="the query's checkpoint location")
    run.add_argument(
        "--master",
        help="Spark master URL (default: spark-submit's, or local[2] when run directly)",
    )
    run.add_argument("--window-s", type=whole_number_arg(1), default=10, help="window length")
    run.add_argument(
        "--watermark-s", type=whole_number_arg(0), default=30, help="how late a row may be"
    )
    run.add_argument(
        "--turn-every", type=whole_number_arg(1), default=6, help="a turn every N windows"
    )
    run.add_argument(
        "--calls-per-minute",
        type=float,
        default=30.0,
        help="story model calls per executor per minute (a turn over it waits for a later window)",
    )
    run.add_argument(
        "--llm-threads",
        type=whole_number_arg(0),
        default=1,
        help="llama.cpp threads for each executor's own story model (default 1: Spark "
        "already runs a task per core; 0: one per core)",
    )
    run.add_argument(
        "--llm-server",
        metavar="URL",
        help="tell the stories with a llama.cpp server (or any OpenAI-compatible one) at URL "
        "instead of llama.cpp in each executor (story.backend = azure: Azure OpenAI)",
    )
    run.add_argument(
        "--llm-server-model", default="story", help="the model name to ask the server for"
    )
    run.add_argument(
        "--max-files-per-trigger",
        type=whole_number_arg(1),
        default=10_000,
        help="landing files a micro-batch reads at most (oldest first)",
    )
    run.add_argument(
        "--cleanup",
        choices=("delete", "archive", "off"),
        help="what becomes of a landing file once the job has committed it (default delete; "
        "archive with --archive)",
    )
    run.add_argument(
        "--archive",
        metavar="DIR",
        help="move read files here instead of deleting them (same file system, outside the "
        "landing)",
    )
    run.add_argument(
        "--no-story", action="store_true", help="only the windows table; no story turns"
    )
    run.add_argument(
        "--once", action="store_true", help="process what has landed, then stop (availableNow)"
    )
    run.set_defaults(handler=fleet_run)


def job_settings(settings: Settings, args: argparse.Namespace) -> object:
    from appliance.fleet.job import JobSettings
    from appliance.fleet.venue_llm import VenueLLMConfig

    backend = "azure" if settings.story.backend == "azure" else "local"
    if args.llm_server:
        backend = "server"
    if args.no_story:
        backend = "none"
    azure = None
    if backend == "azure":
        azure = settings.azure.model_dump(mode="json")
        azure["api_key"] = settings.azure.resolved_key()
    llm = VenueLLMConfig(
        story=settings.story.model_dump(mode="json"),
        models_dir=str(settings.models_dir),
        backend=backend,
        azure=azure,
        calls_per_minute=args.calls_per_minute,
        llm_threads=args.llm_threads,
        server_url=args.llm_server,
        server_model=args.llm_server_model,
    )
    return JobSettings(
        landing=args.landing,
        tables=args.tables,
        checkpoint=args.checkpoint,
        llm=llm,
        window_s=args.window_s,
        watermark_s=args.watermark_s,
        turn_every=args.turn_every,
        max_files_per_trigger=args.max_files_per_trigger,
        cleanup=args.cleanup or ("archive" if args.archive else "delete"),
        archive=str(Path(args.archive).absolute()) if args.archive else None,
    )


def fleet_run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from appliance.fleet.job import JobSettings, spark_session, start
    except ImportError as exc:
        print(f"moodtale: the fleet job needs the fleet extra (pip install '.[fleet]'): {exc}")
        return EXIT_SETUP
    if args.cleanup == "archive" and not args.archive:
        print(
            "moodtale: --cleanup archive needs --archive DIR (where the read files go)",
            file=sys.stderr,
        )
        return EXIT_SETUP
    if args.archive and args.cleanup not in (None, "archive"):
        print(
            f"moodtale: --archive goes with --cleanup archive, not {args.cleanup}",
            file=sys.stderr,
        )
        return EXIT_SETUP
    job = job_settings(settings, args)
    assert isinstance(job, JobSettings)
    spark = spark_session(args.master)
    running = start(spark, job, once=args.once)
    print(f"fleet job running: {job.landing} -> {job.tables} (checkpoint {job.checkpoint})")
    try:
        running.await_termination()
    except KeyboardInterrupt:
        print("stopping the fleet job (it goes on from its checkpoint next time)")
        running.stop()
    failure = running.exception()
    spark.stop()
    if failure is not None:
        print(f"moodtale: the fleet job failed: {failure}")
        return EXIT_FAILED
    return EXIT_OK
