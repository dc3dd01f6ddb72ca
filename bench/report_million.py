"""Benchmark: reports and run listings over one million runs on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/agent_runner uv run python bench/report_million.py

Creates its own throwaway database beside the one DATABASE_URL names (`<name>_bench`, or
--database), migrates it, bulk-loads one million runs with COPY (20 agents, one year, one run
every ~10.5 minutes per agent, ~5% failures) and a trail of audit events, then times:

  - the 30-day report for all agents and for one agent (`runner.reports.run_report`);
  - page 1 of the runs admin changelist (the page query with select_related, no full count);
  - page 1 and page 2 of a cursor-paginated runs API (ordered by -queued_at, -id);

each as the median of several runs and as a ratio against `SELECT count(*)` over the same table,
timed in the same run. It drops the database at the end. SQLite is refused: the point is the
PostgreSQL plan at this size. Exit status 1 if the 30-day report takes a second or more.
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

AGENTS = 20
DAYS = 365


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--database", help="name of the throwaway database (default <name>_bench)")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    return parser.parse_args()


def fill(runs_wanted, now):
    from django.db import connection

    from runner.models import Agent, AuditEvent

    agents = [
        Agent.objects.create(slug=f"bench-{i:02d}", name=f"Bench agent {i}", kind="forecaster")
        for i in range(AGENTS)
    ]
    per_agent = runs_wanted // AGENTS
    step = timedelta(days=DAYS) / per_agent
    start = now - timedelta(days=DAYS)
    rng = random.Random(7)
    statuses = (
        ["succeeded"] * 930
        + ["failed"] * 40
        + ["timed_out"] * 10
        + ["abandoned"] * 5
        + ["cancelled"] * 5
        + ["skipped"] * 10
    )
    errors = [
        ("HTTPError", "Gamma API answered 503"),
        ("ValueError", "LLM returned a probability outside 0..1"),
        ("LeaseExpired", "Worker stopped renewing its lease; the run was reaped."),
    ]
    columns = (
        "agent_id, trigger, slot, missed_slots, status, queued_at, started_at, finished_at, "
        "duration_ms, worker, task_id, cancel_requested, trading_mode, config_snapshot, summary, "
        "error_type, error_message, traceback, log_lines, attempt, policy_note, parameter_overrides"
    )
    loaded = 0
    # Loaded with the rollup triggers off, then the rollups are rebuilt in one go (timed below).
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE runner_cyclerun DISABLE TRIGGER USER")
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY runner_cyclerun ({columns}) FROM STDIN") as copy,
    ):
        for index, agent in enumerate(agents):
            count = per_agent + (runs_wanted - per_agent * AGENTS if index == 0 else 0)
            offset = timedelta(seconds=index * 7)
            for i in range(count):
                queued = start + offset + i * step
                status = rng.choice(statuses)
                roll = rng.random()
                trigger = "schedule" if roll < 0.9 else ("manual" if roll < 0.98 else "cli")
                slot = queued if trigger == "schedule" else None
                if status == "skipped":
                    started, finished, duration = None, queued, None
                else:
                    started = queued + timedelta(milliseconds=rng.randint(5, 4000))
                    duration = int(rng.lognormvariate(8.5, 0.6))
                    finished = started + timedelta(milliseconds=duration)
                error_type, message = ("", "")
                if status in ("failed", "timed_out", "abandoned"):
                    error_type, message = rng.choice(errors)
                copy.write_row(
                    (
                        agent.pk, trigger, slot, 0, status, queued, started, finished, duration,
                        "bench:1", "", False, "dry_run", "{}", "{}", error_type, message, "", "[]", 0, "",
                        "{}",
                    )
                )  # fmt: skip
                loaded += 1
    events = [
        AuditEvent(
            agent=agents[i % AGENTS],
            agent_slug=agents[i % AGENTS].slug,
            action=rng.choice(["start", "stop", "pause", "resume", "run_once"]),
            outcome="applied" if rng.random() < 0.9 else "refused",
            actor_username=rng.choice(["alice", "bob", "carol", ""]),
            source=rng.choice(["admin", "api", "cli"]),
            created_at=start + timedelta(days=DAYS) * rng.random(),
        )
        for i in range(20_000)
    ]
    AuditEvent.objects.bulk_create(events, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE runner_cyclerun ENABLE TRIGGER USER")
        cursor.execute("VACUUM ANALYZE runner_cyclerun")
        cursor.execute("VACUUM ANALYZE runner_auditevent")
    return agents, loaded


def sections(since, until):
    """Each part of the all-agent report on its own: where its time goes."""
    from runner.reports import assembly
    from runner.reports.rollups import RollupWindow

    runs = assembly.runs_in_window(since=since, until=until)

    def window():
        return RollupWindow(since=since, until=until)

    return {
        "counts by status and trigger (rollups)": lambda: window().grouped("status", "trigger"),
        "histograms (rollups)": lambda: window().histograms(),
        "runs per day (rollups)": lambda: assembly._buckets(
            window(), runs, since=since, until=until, bucket="day"
        ),
        "per agent (rollups + newest run)": lambda: assembly._per_agent(
            window(), since=since, until=until
        ),
        "failures by type (runs)": lambda: assembly._failures_by_type(runs),
        "failure streaks (runs)": lambda: assembly._reliability(runs),
        "control actions (audit)": lambda: assembly._control_actions(
            agent=None, since=since, until=until
        ),
    }


def trigger_cost(agent, now, lives=300):
    """Milliseconds per run life (insert queued, update to running, update to succeeded) with
    the rollup triggers on, and with them off, each in one transaction that is rolled back."""
    from django.db import connection, transaction

    from runner.models import CycleRun

    def lives_ms(enabled):
        with transaction.atomic():
            with connection.cursor() as cursor:
                state = "ENABLE" if enabled else "DISABLE"
                cursor.execute(f"ALTER TABLE runner_cyclerun {state} TRIGGER USER")
            started = time.perf_counter()
            for i in range(lives):
                queued = now + timedelta(days=1, seconds=i)
                run = CycleRun.objects.create(
                    agent=agent, trigger="schedule", slot=queued, queued_at=queued
                )
                CycleRun.objects.filter(pk=run.pk).update(
                    status="running", started_at=queued + timedelta(milliseconds=20)
                )
                CycleRun.objects.filter(pk=run.pk).update(
                    status="succeeded",
                    finished_at=queued + timedelta(milliseconds=70),
                    duration_ms=50,
                )
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)
        return elapsed * 1000 / lives

    lives_ms(True)  # warm up
    return {"on": lives_ms(True), "off": lives_ms(False)}


def measure(agents, now):
    from django.db import connection

    from runner.models import CycleRun
    from runner.reports import run_report

    def count_all():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM runner_cyclerun")
            return cursor.fetchone()[0]

    since = now - timedelta(days=30)
    page_size = 100  # the admin's list_per_page
    api_page = 50
    listing = CycleRun.objects.select_related("agent").order_by("-queued_at", "-id")
    first_page = list(listing[: api_page + 1])
    boundary = first_page[api_page - 1]
    cursor_page_2 = listing.filter(queued_at__lte=boundary.queued_at).exclude(
        queued_at=boundary.queued_at, id__gte=boundary.id
    )

    results = {"rows": count_all()}
    baseline = median_seconds(count_all)
    cases = {
        "report, all agents, 30 days": lambda: run_report(since=since, until=now, bucket="day"),
        "report, one agent, 30 days": lambda: run_report(
            agent=agents[0], since=since, until=now, bucket="day"
        ),
        "runs changelist, page 1": lambda: list(listing[:page_size]),
        "runs API, cursor page 1": lambda: list(listing[: api_page + 1]),
        "runs API, cursor page 2": lambda: list(cursor_page_2[: api_page + 1]),
    }
    timings = {name: median_seconds(fn) for name, fn in cases.items()}
    report = run_report(since=since, until=now, bucket="day")
    results.update(baseline=baseline, timings=timings, runs_in_30_days=report["runs"]["total"])
    results["percentiles"] = report["percentiles"]
    results["sections"] = {name: median_seconds(fn) for name, fn in sections(since, now).items()}
    results["trigger_ms"] = trigger_cost(agents[0], now)
    return results


def main():
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(
            "This benchmark needs PostgreSQL: set DATABASE_URL=postgres://... (SQLite is refused)."
        )
    parts = urlsplit(url)
    bench_db = args.database or f"{parts.path.lstrip('/') or 'agent_runner'}_bench"
    with postgres_admin(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
        admin.execute(f'CREATE DATABASE "{bench_db}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{bench_db}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault(
        "DJANGO_SECRET_KEY", "benchmark-only-secret-key-not-for-production-0123456789"
    )

    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from runner.reports.rebuild import rebuild_rollups

        call_command("migrate", verbosity=0)
        now = datetime.now(UTC).replace(microsecond=0)
        started = time.perf_counter()
        agents, loaded = fill(args.runs, now)
        print(f"loaded {loaded:,} runs in {time.perf_counter() - started:.1f} s (COPY)")
        started = time.perf_counter()
        rebuilt = rebuild_rollups(days_per_batch=31)
        print(
            f"rebuildrollups: {rebuilt.rollup_rows:,} rollup rows, {rebuilt.bucket_rows:,} "
            f"bucket rows in {time.perf_counter() - started:.1f} s"
        )
        with connections["default"].cursor() as cursor:
            cursor.execute("VACUUM ANALYZE runner_runrollup")
            cursor.execute("VACUUM ANALYZE runner_runrollupbucket")
        results = measure(agents, now)
        connections.close_all()
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            with postgres_admin(url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
    baseline = results["baseline"]
    print(f"table: {results['rows']:,} runs; {results['runs_in_30_days']:,} in the last 30 days")
    print(f"30-day all-agent percentiles: {results['percentiles']}")
    print(f"{'query':34} {'median ms':>10} {'x count(*)':>11}")
    print(f"{'SELECT count(*) (baseline)':34} {baseline * 1000:10.1f} {1.0:11.2f}")
    for name, seconds in results["timings"].items():
        print(f"{name:34} {seconds * 1000:10.1f} {seconds / baseline:11.2f}")
    print("where the all-agent 30-day report's time goes (each part alone):")
    for name, seconds in results["sections"].items():
        print(f"  {name:38} {seconds * 1000:8.1f} ms {seconds / baseline:6.2f}x")
    cost = results["trigger_ms"]
    print(
        f"run life (insert, running, succeeded): {cost['on']:.2f} ms with the rollup triggers, "
        f"{cost['off']:.2f} ms without (+{cost['on'] - cost['off']:.2f} ms)"
    )
    slowest = max(
        results["timings"]["report, all agents, 30 days"],
        results["timings"]["report, one agent, 30 days"],
    )
    verdict = "OK" if slowest < 1.0 else "TOO SLOW"
    print(f"30-day report under one second: {verdict} ({slowest * 1000:.0f} ms)")
    return 0 if slowest < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
