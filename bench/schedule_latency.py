"""How late do scheduled cycles start, and what does the runner cost per cycle?

    uv run python bench/schedule_latency.py                  # temporary SQLite database
    uv run python bench/schedule_latency.py --database-url postgres://postgres@127.0.0.1:5432/bench_db
    uv run python bench/schedule_latency.py --quick          # skip the 30 s scheduler baseline

It starts a real `manage.py qcluster` (and `manage.py rundispatcher`) against a fresh database and
measures, in the same run:

1. slot -> start delay of N scheduled cycles with the dispatcher (median, p95), against the same
   delay with django-q2's own scheduler alone (which passes about every 30 s), as a ratio;
2. the runner's own cost per cycle (queued run and audit event, claim and lease, heartbeat thread,
   fenced finish and counters: what `runagent --once` does) against calling the same agent
   directly, in this process, as a ratio; and the end-to-end cycle in the
   cluster (queued task -> recorded finish) against the direct call.

The given PostgreSQL database is dropped and created afresh, so never point it at real data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
WORK_SECONDS = 0.02


class BenchAgent:
    """A stand-in agent with a fixed amount of work (20 ms of waiting, one checkpoint)."""

    def run(self, context):
        context.checkpoint()
        time.sleep(WORK_SECONDS)
        return {"slept": WORK_SECONDS}


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def describe(label, seconds):
    ms = [s * 1000 for s in seconds]
    return (
        f"{label}: n={len(ms)} median {statistics.median(ms):.0f} ms, "
        f"p95 {percentile(ms, 0.95):.0f} ms, max {max(ms):.0f} ms"
    )


def prepare_environment(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ["RUNNER_EXTRA_AGENT_KINDS"] = json.dumps(
        {"bench-work": "bench.schedule_latency.BenchAgent"}
    )
    os.environ.setdefault("RUNNER_LEASE_SECONDS", "30")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if database_url.startswith("postgres"):
        base, _, name = database_url.rpartition("/")
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, check=True
    )
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def start(name, args, log_dir):
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    marker = "running." if args[0] == "qcluster" else "dispatcher running"
    deadline = time.monotonic() + 60
    while marker not in (log_dir / f"{name}.log").read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start; see {log_dir / f'{name}.log'}")
        time.sleep(0.05)
    return proc


def stop(proc):
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def make_due(agent, at):
    from django.db import transaction

    from runner import scheduling
    from runner.models import Agent

    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        locked.next_run = at
        locked.save(update_fields=["next_run"])
        scheduling.sync_schedule(locked)


def wait_for_slots(pairs, timeout):
    """Wait until every (agent, slot) has a finished run; returns the runs."""
    from runner.models import CycleRun

    deadline = time.monotonic() + timeout
    while True:
        found = {
            (run.agent_id, run.slot): run
            for run in CycleRun.objects.filter(finished_at__isnull=False, slot__isnull=False)
        }
        missing = [pair for pair in pairs if (pair[0].pk, pair[1]) not in found]
        if not missing:
            return [found[(agent.pk, slot)] for agent, slot in pairs]
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(missing)} slots did not run within {timeout}s")
        time.sleep(0.05)


def create_agents(count, prefix):
    from runner import services
    from runner.actors import Actor
    from runner.models import Agent

    agents = []
    for i in range(count):
        agent = services.agent_create(
            values={"slug": f"{prefix}-{i}", "kind": "bench-work", "interval_minutes": 60},
            actor=Actor.system(),
        )
        services.agent_start(agent=agent, actor=Actor.system())
        agents.append(Agent.objects.get(pk=agent.pk))
    return agents


def wait_idle(agents, timeout=30):
    from runner.models import CycleRun

    deadline = time.monotonic() + timeout
    while CycleRun.objects.filter(agent__in=agents, finished_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise SystemExit("cycles did not finish")
        time.sleep(0.05)
    # the first cycles queued by start are done; forget them
    CycleRun.objects.filter(agent__in=agents).delete()


def measure_latency(agents, slots_per_agent, spread_seconds):
    """Give every agent `slots_per_agent` slots at random moments; return slot->start delays."""
    from django.utils import timezone

    delays, e2e = [], []
    for _ in range(slots_per_agent):
        now = timezone.now()
        pairs = []
        for agent in agents:
            slot = now + timedelta(seconds=0.3 + random.uniform(0, spread_seconds))
            make_due(agent, slot)
            pairs.append((agent, slot))
        runs = wait_for_slots(pairs, timeout=spread_seconds + 70)
        for run in runs:
            delays.append((run.started_at - run.slot).total_seconds())
            e2e.append(run.duration_ms / 1000)
    return delays, e2e


def measure_overhead(repeats):
    """Direct agent calls vs the runner's in-process cycle (claim, execute, fenced finish)."""
    from django.utils import timezone

    from runner import execution, services
    from runner.actors import Actor
    from runner.models import Agent
    from runner.protocol import CycleContext

    agent = BenchAgent()
    context = CycleContext(
        agent_slug="direct",
        run_id=0,
        parameters={},
        trading_mode="dry_run",
        deadline=timezone.now() + timedelta(hours=1),
        logger=None,
        checkpoint=lambda: None,
        now=timezone.now,
    )
    direct = []
    for _ in range(repeats):
        began = time.perf_counter()
        agent.run(context)
        direct.append(time.perf_counter() - began)

    model = services.agent_create(
        values={"slug": "bench-inprocess", "kind": "bench-work"}, actor=Actor.system()
    )
    model = Agent.objects.get(pk=model.pk)
    runner = []
    for _ in range(repeats):
        began = time.perf_counter()
        queued = services.agent_run_once(
            agent=model, actor=Actor.system(), trigger="cli", enqueue=False
        )
        claim = services.cycle_claim_queued(run_id=queued.pk, worker=execution.worker_name())
        run = execution.execute_claim(claim)
        runner.append(time.perf_counter() - began)
        assert run.status == "succeeded", run.error_message
    return direct, runner


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--agents", type=int, default=2, help="agents due at about the same time")
    parser.add_argument("--slots", type=int, default=10, help="slots per agent (dispatcher)")
    parser.add_argument("--baseline-agents", type=int, default=4)
    parser.add_argument("--overhead-repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="skip the 30 s scheduler baseline")
    options = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="schedule-latency-"))
    database_url = options.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    print(f"database: {database_url.split('@')[-1]}  logs: {tmp}")
    prepare_environment(database_url)

    cluster = start("qcluster", ["qcluster"], tmp)
    dispatcher = None
    try:
        baseline = None
        if not options.quick:
            agents = create_agents(options.baseline_agents, "baseline")
            wait_idle(agents)  # start queued their first cycles without any scheduler
            print(f"baseline: django-q2 scheduler alone, {len(agents)} slots over 30 s ...")
            baseline, _ = measure_latency(agents, 1, spread_seconds=30)
            print("  " + describe("slot -> start (django-q2 scheduler only)", baseline))
            from runner import services
            from runner.actors import Actor

            for agent in agents:
                services.agent_stop(agent=agent, actor=Actor.system())

        dispatcher = start("dispatcher", ["rundispatcher"], tmp)
        agents = create_agents(options.agents, "dispatched")
        wait_idle(agents)
        delays, e2e = measure_latency(agents, options.slots, spread_seconds=0.7)
        print(describe("slot -> start (with rundispatcher)", delays))
        if baseline:
            ratio = statistics.median(baseline) / max(statistics.median(delays), 1e-6)
            print(f"  median delay ratio, scheduler alone / with dispatcher: {ratio:.1f}x")
    finally:
        if dispatcher is not None:
            stop(dispatcher)
        stop(cluster)

    direct, runner = measure_overhead(options.overhead_repeats)
    direct_ms = statistics.median(direct) * 1000
    runner_ms = statistics.median(runner) * 1000
    cluster_ms = statistics.median(e2e) * 1000
    print(f"direct agent call: median {direct_ms:.1f} ms")
    print(
        f"runner cycle in-process (run-once record + audit, claim + lease, heartbeat thread, "
        f"fenced finish + counters): median "
        f"{runner_ms:.1f} ms -> overhead {runner_ms - direct_ms:.1f} ms, "
        f"ratio {runner_ms / direct_ms:.2f}x"
    )
    print(
        f"cycle duration recorded by the cluster (started -> finished): median {cluster_ms:.1f} ms,"
        f" ratio {cluster_ms / direct_ms:.2f}x the direct call"
    )


if __name__ == "__main__":
    main()
