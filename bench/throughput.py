"""Cycles per second of the runner against plain django-q2 running the same no-op, same broker.

    uv run python bench/throughput.py                                   # ORM broker on PostgreSQL
    uv run python bench/throughput.py --redis redis://127.0.0.1:6379/14  # Redis broker as well
    uv run python bench/throughput.py --tasks 200 --rounds 2 --database-url postgres://...

One real `manage.py qcluster` (2 workers) against a fresh database (dropped and created afresh:
never point it at real data). Each round, in the same cluster:

1. plain: N `async_task("bench.throughput.noop")` calls, as any django-q2 user would queue them;
2. runner: N due scheduled slots of N no-op agents, sent by the dispatcher's own code
   (`scheduling.dispatch_due_slots`), each claimed, run and recorded by `run_scheduled_cycle`.

Throughput is N / (last finish - first enqueue) for each; the ratio runner / plain is printed per
round and for the best round of each (target >= 0.5, issue 14).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from bench.common import Process, drop_database, ensure_database, manage, wait_for  # noqa: E402

NOOP_KIND = {"bench-noop": "bench.cycle_cost.NoopAgent"}
TARGET = 0.5


def noop():
    """The plain django-q2 task: nothing at all, like the runner's no-op agent."""
    return None


def environment(database_url, redis_url):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get(
            "DJANGO_SECRET_KEY", "bench-only-secret-0123456789-xyz"
        ),
        "RUNNER_EXTRA_AGENT_KINDS": json.dumps(NOOP_KIND),
        "Q_WORKERS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def setup_django(env):
    os.environ.update({k: v for k, v in env.items() if k in _DJANGO_KEYS})
    if "REDIS_URL" not in env:
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import logging

    import django

    django.setup()
    logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per queued task


_DJANGO_KEYS = {
    "DATABASE_URL",
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "RUNNER_EXTRA_AGENT_KINDS",
    "REDIS_URL",
}


def start_cluster(env, log_dir):
    cluster = Process([sys.executable, "manage.py", "qcluster"], env, log_dir / "qcluster.log")
    wait_for(
        lambda: "running." in (log_dir / "qcluster.log").read_text(errors="replace"),
        timeout=60,
        what="the qcluster to start",
    )
    return cluster


def create_agents(count):
    """N running no-op agents, hourly, whose Schedule rows fire far in the future until a round
    makes them due; the first cycles `start` queued are dropped unrun."""
    from django_q.brokers import get_broker

    from runner import services
    from runner.actors import Actor
    from runner.models import Agent

    for i in range(count):
        agent = services.agent_create(
            values={"slug": f"noop-{i}", "kind": "bench-noop", "interval_minutes": 60},
            actor=Actor.system(),
        )
        services.agent_start(agent=agent, actor=Actor.system())
    get_broker().purge_queue()
    return list(Agent.objects.filter(slug__startswith="noop-").values_list("pk", flat=True))


def plain_round(tasks, round_number):
    """Seconds from the first enqueue until django-q2 recorded the last of `tasks` no-ops."""
    from django_q.models import Task
    from django_q.tasks import async_task

    group = f"plain-{round_number}"
    started = time.time()
    for _ in range(tasks):
        async_task("bench.throughput.noop", group=group)
    wait_for(
        lambda: Task.objects.filter(group=group).count() >= tasks,
        timeout=300,
        interval=0.1,
        what="the plain tasks",
    )
    last = max(Task.objects.filter(group=group).values_list("stopped", flat=True))
    return last.timestamp() - started


def runner_round(agent_ids, round_number):
    """Seconds from the dispatcher's first send until the last of the agents' slots was recorded,
    and how many of them the dispatcher's pass took."""
    from django.db.models import Max
    from django.utils import timezone
    from django_q.models import Schedule

    from runner import scheduling
    from runner.models import Agent, CycleRun

    slot = timezone.now().replace(microsecond=0) - timedelta(seconds=1)
    Agent.objects.filter(pk__in=agent_ids).update(next_run=slot)
    names = [f"{scheduling.SCHEDULE_PREFIX}{pk}" for pk in agent_ids]
    Schedule.objects.filter(name__in=names).update(next_run=slot)
    started = time.time()
    sent = scheduling.dispatch_due_slots()
    dispatched = time.time() - started
    assert len(sent) == len(agent_ids), f"dispatched {len(sent)} of {len(agent_ids)}"
    runs = CycleRun.objects.filter(slot=slot, finished_at__isnull=False)
    wait_for(lambda: runs.count() >= len(agent_ids), timeout=300, interval=0.1, what="the cycles")
    statuses = set(runs.values_list("status", flat=True))
    assert statuses == {"succeeded"}, statuses
    last = runs.aggregate(last=Max("finished_at"))["last"]
    return last.timestamp() - started, dispatched


def measure(env, tasks, rounds, log_dir, label):
    cluster = start_cluster(env, log_dir)
    try:
        agent_ids = create_agents(tasks)
        plain, runner = [], []
        for number in range(1, rounds + 1):
            plain.append(tasks / plain_round(tasks, number))
            seconds, dispatched = runner_round(agent_ids, number)
            runner.append(tasks / seconds)
            print(
                f"  {label} round {number}: plain django-q2 {plain[-1]:.1f} tasks/s, "
                f"runner {runner[-1]:.1f} cycles/s (the dispatcher sent all {tasks} slots in "
                f"{dispatched:.2f} s of the {seconds:.2f} s), ratio {runner[-1] / plain[-1]:.2f}",
                flush=True,
            )
    finally:
        cluster.stop()
    return plain, runner


def report(label, plain, runner):
    ratio = max(runner) / max(plain)
    median_ratio = statistics.median(r / p for r, p in zip(runner, plain, strict=True))
    print(
        f"{label}: best plain {max(plain):.1f} tasks/s, best runner {max(runner):.1f} cycles/s: "
        f"ratio {ratio:.2f} (median of rounds {median_ratio:.2f}); target >= {TARGET}"
    )
    return ratio >= TARGET


def run(database_url, redis_url, tasks, rounds) -> bool:
    """One broker's measurement, in this process (fresh database, migrated, one cluster)."""
    drop_database(database_url)
    ensure_database(database_url)
    env = environment(database_url, redis_url)
    manage(env, "migrate", "--noinput", "-v", "0")
    setup_django(env)
    label = "Redis broker" if redis_url else "ORM broker (PostgreSQL)"
    log_dir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    print(f"{label}: {tasks} no-op tasks a round, one qcluster with 2 workers; logs in {log_dir}")
    plain, runner = measure(env, tasks, rounds, log_dir, "redis" if redis_url else "orm")
    from django.db import connections

    connections.close_all()
    return report(label, plain, runner)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_throughput"
    )
    parser.add_argument("--redis", default="", help="also measure on this Redis broker URL")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only-redis", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.only_redis:  # the child process: Django reads REDIS_URL once, at setup
        return 0 if run(args.database_url, args.redis, args.tasks, args.rounds) else 1
    met = run(args.database_url, "", args.tasks, args.rounds)
    if args.redis:
        child = [sys.executable, __file__, "--only-redis", "--redis", args.redis]
        child += ["--database-url", args.database_url]
        child += ["--tasks", str(args.tasks), "--rounds", str(args.rounds)]
        met = subprocess.run(child, cwd=BASE_DIR, check=False).returncode == 0 and met
    print("target met" if met else "target NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
