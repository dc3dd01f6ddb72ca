"""Benchmark: one full forecaster cycle over the SAMPLE snapshot with the baseline forecaster.

Reported as a ratio against the floor of the same work, measured in the same run: loading and
parsing the snapshot file. A full cycle adds filtering, ranking, writing every market seen, 20
forecasts, 20 decisions and the runner's own claim/finish bookkeeping.

    uv run python bench/forecaster_cycle.py                  # a temporary SQLite database
    uv run python bench/forecaster_cycle.py --configured-db  # the DATABASE_URL database
    uv run python bench/forecaster_cycle.py --repeat 20
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 2000


def setup_django(configured_db: bool, tmpdir: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault(
        "DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789"
    )
    os.environ["MARKET_SOURCE"] = "snapshot"
    os.environ["TRADING_MODE"] = "dry_run"
    if not configured_db:
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmpdir) / 'bench.sqlite3'}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    logging.getLogger("runner").setLevel(logging.WARNING)  # keep the console for the numbers


def load_and_parse() -> int:
    from agents.markets import parse_market
    from agents.sources import SnapshotSource

    return len([parse_market(raw) for raw in SnapshotSource().load().raw_markets])


def full_cycle(agent):
    from runner import execution, services
    from runner.actors import Actor

    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="bench:1")
    run = execution.execute_claim(claim)
    if run.status != "succeeded":
        raise SystemExit(f"cycle {run.pk} {run.status}: {run.error_type}: {run.error_message}")
    return run


def timed(fn, repeat):
    samples = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--configured-db", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir:
        setup_django(args.configured_db, tmpdir)
        from django.conf import settings
        from django.db import connection

        from runner.models import Agent

        agent, _ = Agent.objects.update_or_create(
            slug="bench-forecaster",
            defaults={"name": "Benchmark", "kind": "forecaster", "parameters": {}},
        )
        full_cycle(agent)  # warm-up: imports, first paper account
        load_and_parse()

        floor, count = timed(load_and_parse, args.repeat)
        cycle, run = timed(lambda: full_cycle(agent), args.repeat)
        floor_ms, cycle_ms = statistics.median(floor), statistics.median(cycle)

        summary = run.summary
        print(f"database: {connection.vendor} ({settings.DATABASES['default']['NAME']})")
        print(
            f"snapshot: {count} SAMPLE markets; cycle: {summary['markets_tradeable']} tradeable, "
            f"{summary['markets_analysed']} analysed with {summary['forecaster']}, "
            f"{summary['decisions_approved']} approved, {summary['decisions_rejected']} rejected"
        )
        print(f"repeats: {args.repeat} (median; min..max)")
        print(f"load+parse snapshot : {floor_ms:8.2f} ms  ({min(floor):.2f}..{max(floor):.2f})")
        print(f"full cycle          : {cycle_ms:8.2f} ms  ({min(cycle):.2f}..{max(cycle):.2f})")
        print(f"ratio cycle / load+parse: {cycle_ms / floor_ms:.1f}x")
        print(f"agent step_ms (last run): {summary['step_ms']}")
        verdict = "OK" if cycle_ms < TARGET_MS else "TOO SLOW"
        print(f"target: full cycle well under {TARGET_MS} ms -> {verdict}")
        connection.close()


if __name__ == "__main__":
    main()
