"""Benchmark: the forecast scorekeeping report over 100,000 forecasts and 10,000 resolutions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/agent_runner uv run python bench/scorekeeping.py

Creates a throwaway database beside the one DATABASE_URL names (`<name>_bench_scores`, or
--database), migrates it and loads with COPY (fixed seed): 10 agents, 100,000 forecasts over 30
days by two forecasters, each with the market observation it was made on, spread over 20,000
markets of which 10,000 have a resolution, and 5,000 paper fills. It then times
`agents.scoring.forecast_scores` (Brier score, log loss, calibration against the market price, and
realised paper P&L) for all agents and for one agent, each as the median of several runs and as a
ratio against `SELECT count(*)` over the forecasts in the same run, and drops the database.
SQLite is refused. Exit status 1 if the all-agents report takes a second or more.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import median_seconds, postgres_admin  # noqa: E402

AGENTS = 10
MARKETS = 20_000
RESOLVED = 10_000
FILLS = 5_000
RUNS_PER_AGENT = 100


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forecasts", type=int, default=100_000)
    parser.add_argument("--database", help="the throwaway database (default <name>_bench_scores)")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    return parser.parse_args()


def _copy(cursor, table, columns, rows):
    with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def fill(forecasts_wanted, now):
    """Load the data set; returns the agents."""
    from django.db import connection

    from runner.models import Agent, CycleRun

    rng = random.Random(7)
    start = now - timedelta(days=30)
    agents = [
        Agent.objects.create(slug=f"score-{i:02d}", name=f"Score agent {i}", kind="forecaster")
        for i in range(AGENTS)
    ]
    runs = CycleRun.objects.bulk_create(
        CycleRun(
            agent=agent,
            trigger="schedule",
            status="succeeded",
            queued_at=start + timedelta(days=30) * (i / RUNS_PER_AGENT),
            started_at=start + timedelta(days=30) * (i / RUNS_PER_AGENT),
        )
        for agent in agents
        for i in range(RUNS_PER_AGENT)
    )
    prices = [round(rng.uniform(0.02, 0.98), 3) for _ in range(MARKETS)]
    per_run = forecasts_wanted // len(runs)
    observations, forecasts = [], []
    for run in runs:
        for _ in range(per_run):
            market = rng.randrange(MARKETS)
            price = prices[market]
            made = run.queued_at
            observations.append(
                (
                    run.pk,
                    run.agent_id,
                    "gamma",
                    False,
                    made,
                    f"m{market}",
                    "",
                    "",
                    price,
                    True,
                    0,
                    0,
                    "",
                )
            )
            forecaster = "baseline" if rng.random() < 0.5 else "llm"
            belief = price if forecaster == "baseline" else min(max(rng.gauss(price, 0.1), 0), 1)
            forecasts.append((run.pk, run.agent_id, forecaster, "ok", belief, price, made))
    with connection.cursor() as cursor:
        _copy(
            cursor,
            "agents_marketobservation",
            ("run_id", "agent_id", "source", "is_sample", "captured_at", "market_id", "question",
             "slug", "yes_price", "tradeable", "liquidity", "volume", "untradeable_reason"),
            observations,
        )  # fmt: skip
        cursor.execute("SELECT id FROM agents_marketobservation ORDER BY id")
        observation_ids = [row[0] for row in cursor.fetchall()]
        _copy(
            cursor,
            "agents_forecast",
            ("run_id", "agent_id", "market_id", "forecaster", "model", "status", "probability",
             "reasoning", "error", "market_price", "attempts", "latency_ms", "created_at"),
            (
                (run, agent, obs, name, "", status, p, "", "", q, 0, 0, made)
                for obs, (run, agent, name, status, p, q, made) in zip(observation_ids, forecasts, strict=True)
            ),
        )  # fmt: skip
        resolved_at = now - timedelta(minutes=1)
        _copy(
            cursor,
            "agents_marketresolution",
            ("source", "market_id", "question", "is_sample", "yes_price", "outcome",
             "resolved_at", "recorded_at"),
            (
                ("gamma", f"m{m}", "", False, yes, "Yes" if yes else "No", resolved_at, now)
                for m in range(RESOLVED)
                for yes in [1.0 if rng.random() < prices[m] else 0.0]
            ),
        )  # fmt: skip
        _fills(cursor, rng, now)
        for table in ("agents_marketobservation", "agents_forecast", "agents_marketresolution",
                      "agents_tradedecision", "agents_paperfill"):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")
    return agents


def _fills(cursor, rng, now):
    """Approved decisions and paper fills for FILLS of the forecasts (realised P&L)."""
    cursor.execute(
        f"SELECT id, run_id, agent_id, market_id, market_price, created_at FROM agents_forecast "
        f"WHERE forecaster = 'llm' ORDER BY id LIMIT {FILLS}"
    )
    chosen = cursor.fetchall()
    _copy(
        cursor,
        "agents_tradedecision",
        ("run_id", "agent_id", "forecast_id", "market_id", "approved", "side", "edge", "kelly",
         "size", "price", "reason", "created_at"),
        ((run, agent, fid, obs, True, "yes", 0.1, 0.2, 10.0, q, "bench", made)
         for fid, run, agent, obs, q, made in chosen),
    )  # fmt: skip
    cursor.execute("SELECT id, forecast_id FROM agents_tradedecision ORDER BY id")
    decision_of = {forecast: decision for decision, forecast in cursor.fetchall()}
    _copy(
        cursor,
        "agents_paperfill",
        ("run_id", "agent_id", "decision_id", "market_id", "side", "price", "shares", "cost",
         "created_at"),
        ((run, agent, decision_of[fid], f"m{rng.randrange(MARKETS)}", "yes", q, 10.0 / q, 10.0,
          made) for fid, run, agent, _obs, q, made in chosen),
    )  # fmt: skip


def measure(agents, now):
    from django.db import connection

    from agents.scoring import forecast_scores

    def count_all():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM agents_forecast")
            return cursor.fetchone()[0]

    since, until = now - timedelta(days=31), now
    scores = forecast_scores(None, since, until)
    return {
        "rows": count_all(),
        "scored": sum(row["resolved_forecasts"] for row in scores["forecast_scores"]),
        "fills": sum(row["fills"] for row in scores["resolved_paper_pnl"]),
        "baseline": median_seconds(count_all),
        "timings": {
            "scores, all agents": median_seconds(lambda: forecast_scores(None, since, until)),
            "scores, one agent": median_seconds(lambda: forecast_scores(agents[0], since, until)),
        },
    }


def main():
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL=postgres://... (not SQLite).")
    parts = urlsplit(url)
    bench_db = args.database or f"{parts.path.lstrip('/') or 'agent_runner'}_bench_scores"
    with postgres_admin(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{bench_db}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-42")

    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        now = datetime.now(UTC).replace(microsecond=0)
        started = time.perf_counter()
        agents = fill(args.forecasts, now)
        print(f"loaded the data set in {time.perf_counter() - started:.1f} s (COPY)")
        results = measure(agents, now)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with postgres_admin(url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
    baseline = results["baseline"]
    print(
        f"{results['rows']:,} forecasts, {RESOLVED:,} resolutions; {results['scored']:,} "
        f"forecasts scored, {results['fills']:,} fills on resolved markets"
    )
    print(f"{'query':36} {'median ms':>10} {'x count(*)':>11}")
    print(f"{'SELECT count(*) of forecasts':36} {baseline * 1000:10.1f} {1.0:11.2f}")
    for name, seconds in results["timings"].items():
        print(f"{name:36} {seconds * 1000:10.1f} {seconds / baseline:11.2f}")
    slowest = results["timings"]["scores, all agents"]
    verdict = "OK" if slowest < 1.0 else "TOO SLOW"
    print(f"scorekeeping report under one second: {verdict} ({slowest * 1000:.0f} ms)")
    return 0 if slowest < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
