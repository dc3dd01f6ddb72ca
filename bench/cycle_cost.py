"""What does one scheduled no-op cycle cost the runner: SQL statements and wall time over a direct call?

    uv run python bench/cycle_cost.py --database-url postgres://postgres@127.0.0.1:5432/bench_cycle_cost
    uv run python bench/cycle_cost.py --repeats 200 --show-sql

In this process, against a fresh database (PostgreSQL is dropped and created afresh: never point it
at real data), it runs `runner.execution.run_scheduled` for a due slot of a no-op agent, as the
cluster task does once the dispatcher has moved the agent's schedule row on, and counts the
statements of the claim, start, finish and counters with CaptureQueriesContext (in cycles of their
own: the capture's formatting is not timed). The baseline,
measured in the same run, is the same agent's `run(context)` called directly. Targets (issue 14):
at most 10 statements per cycle and under 10 ms of overhead on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

NOOP_KIND = {"bench-noop": "bench.cycle_cost.NoopAgent"}
MAX_STATEMENTS = 10
MAX_OVERHEAD_MS = 10.0


class NoopAgent:
    """Does nothing: what is left of a cycle is the runner's own cost."""

    def run(self, context):
        return {}


def prepare(database_url):
    """A fresh, migrated database and Django set up in this process."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["RUNNER_EXTRA_AGENT_KINDS"] = json.dumps(NOOP_KIND)
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from bench.common import drop_database, ensure_database, manage

    if database_url.startswith("postgres"):
        drop_database(database_url)
        ensure_database(database_url)
    manage({**os.environ}, "migrate", "--noinput", "-v", "0")
    import django

    django.setup()


def noop_agent():
    """A running no-op agent with no cycle in flight (start's first cycle is settled here)."""
    from runner import execution, services
    from runner.actors import Actor
    from runner.models import Agent, CycleRun

    agent = services.agent_create(
        values={"slug": "noop", "kind": "bench-noop", "interval_minutes": 1}, actor=Actor.system()
    )
    services.agent_start(agent=agent, actor=Actor.system())
    agent = Agent.objects.get(pk=agent.pk)
    execution.run_scheduled(agent.pk, slot=agent.next_run)  # start's first slot, run here
    CycleRun.objects.filter(agent=agent).delete()
    return Agent.objects.get(pk=agent.pk)


def make_due(agent_id):
    """The agent's next slot is due now, and its schedule row has moved on (the dispatcher's part)."""
    from django.utils import timezone
    from django_q.models import Schedule

    from runner import scheduling
    from runner.models import Agent

    now = timezone.now()
    slot = now - timedelta(milliseconds=1)
    Agent.objects.filter(pk=agent_id).update(next_run=slot)
    agent = Agent.objects.get(pk=agent_id)
    Schedule.objects.filter(name=scheduling.schedule_name(agent)).update(
        next_run=scheduling.following_fire(agent, slot, now)
    )
    return slot


def one_cycle(agent_id, slot):
    """Seconds and CPU seconds of one cycle, as a worker runs it (no statement capture)."""
    from runner import execution

    started, cpu = time.perf_counter(), time.process_time()
    run = execution.run_scheduled(agent_id, slot=slot)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert run is not None and run.status == "succeeded", run and run.status
    return elapsed, cpu


def captured_cycle(agent_id, slot):
    """The statements of one cycle. Captured apart from the timed cycles: Django's capture
    formats and logs every statement, a cost of the bench rather than of the runner."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from runner import execution

    with CaptureQueriesContext(connection) as captured:
        run = execution.run_scheduled(agent_id, slot=slot)
    assert run is not None and run.status == "succeeded", run and run.status
    return list(captured.captured_queries)


def direct_call(agent_id):
    """The baseline: the agent's own run(context), with a context like the runner's."""
    import logging

    from django.utils import timezone

    from runner.protocol import CycleContext

    context = CycleContext(
        agent_slug="noop",
        run_id=0,
        parameters={},
        trading_mode="dry_run",
        deadline=timezone.now() + timedelta(minutes=5),
        logger=logging.getLogger("bench"),
        checkpoint=lambda: None,
        now=timezone.now,
        extra={},
    )
    started = time.perf_counter()
    NoopAgent().run(context)
    return time.perf_counter() - started


def round_trips(count, agent_id):
    """The floor under a cycle of `count` statements: two committed transactions that each write
    one row (a cycle's claim and finish), and the rest `SELECT 1` round trips."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for _ in range(2):
            with transaction.atomic():
                cursor.execute(
                    "UPDATE runner_agent SET updated_at = updated_at WHERE id = %s", [agent_id]
                )
        for _ in range(count - 6):  # 2 x (BEGIN, UPDATE, COMMIT) above
            cursor.execute("SELECT 1")
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_cycle_cost"
    )
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--show-sql", action="store_true", help="print every statement of a cycle")
    args = parser.parse_args(argv)

    prepare(args.database_url)
    from django.db import connection

    agent = noop_agent()
    # warm up: imports, the connection, prepared plans
    for _ in range(5):
        one_cycle(agent.pk, make_due(agent.pk))
    cycle_times, cpu_times, counts, sample = [], [], [], []
    for _ in range(args.repeats):
        elapsed, cpu = one_cycle(agent.pk, make_due(agent.pk))
        cycle_times.append(elapsed)
        cpu_times.append(cpu)
    for _ in range(max(args.repeats // 10, 5)):
        sample = captured_cycle(agent.pk, make_due(agent.pk))
        counts.append(len(sample))
    direct_times = [direct_call(agent.pk) for _ in range(args.repeats)]
    floor_times = [round_trips(max(counts), agent.pk) for _ in range(args.repeats)]

    cycle_ms = statistics.median(cycle_times) * 1000
    direct_ms = statistics.median(direct_times) * 1000
    overhead_ms = cycle_ms - direct_ms
    transaction_control = sum(
        1
        for query in sample
        if query["sql"].split(" ", 1)[0].upper() in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}
    )
    print(f"database: {connection.vendor}, {args.repeats} scheduled no-op cycles")
    print("statements of one cycle:")
    for number, query in enumerate(sample, 1):
        sql = query["sql"] if args.show_sql else query["sql"][:110]
        print(f"  {number:2}. {sql}")
    print(
        f"statements per cycle: {max(counts)} (min {min(counts)}; {transaction_control} of them "
        f"transaction control); target <= {MAX_STATEMENTS}"
    )
    print(
        f"cycle median {cycle_ms:.2f} ms vs direct call {direct_ms:.4f} ms: runner overhead "
        f"{overhead_ms:.2f} ms (p95 cycle {sorted(cycle_times)[int(0.95 * (len(cycle_times) - 1))] * 1000:.2f} ms); "
        f"target < {MAX_OVERHEAD_MS:.0f} ms"
    )
    floor_ms = statistics.median(floor_times) * 1000
    cpu_ms = statistics.median(cpu_times) * 1000
    print(f"CPU time of this process per cycle (median): {cpu_ms:.2f} ms")
    print(
        f"floor: {max(counts)} statements with two committed one-row writes (no ORM, no agent) "
        f"take {floor_ms:.2f} ms here now; the cycle is {cycle_ms / floor_ms:.2f}x that, "
        f"{cycle_ms - floor_ms:.2f} ms above it (Python: ORM, heartbeat thread, the run's log)"
    )
    met = max(counts) <= MAX_STATEMENTS and overhead_ms < MAX_OVERHEAD_MS
    print("target met" if met else "target NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
