"""Do due cycles start on an idle worker while another cluster is busy? The issue's drill.

    uv run python bench/idle_workers.py [--minutes 5] [--database-url postgres://...]

Three `manage.py qcluster`s (two workers each) and two `manage.py rundispatcher`s on PostgreSQL;
six agents of the slow, cooperative test kind whose cycles take 5 to 50 s, every minute, started
at seeded moments over the first minute so their slots are spread. The drill runs twice in the
same run, on the same cycle lengths and offsets: first with django-q2's own pusher
(RUNNER_WORKER_GATE=0, the baseline), then with our qcluster's free-worker gate (the default).
For each it prints slot -> start p50, p95 and max, how many cycles started more than 1 s late,
and how many slots were skipped because the previous cycle was still running; then the ratios
baseline / gate. The lease stays at its default (30 s), so a held slot is resent after 30 s,
as in production.

The given PostgreSQL database is dropped and created afresh, so never point it at real data.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Process,
    django_env,
    drop_database,
    ensure_database,
    manage,
    percentile,
    wait_for,
)

CLUSTERS = 3
DISPATCHERS = 2
CYCLE_SECONDS = [5, 14, 23, 32, 41, 50]
LATE = timedelta(seconds=1)


def start_processes(env, logs, label):
    """Three clusters and two dispatchers; returns them once every one says it is running."""
    procs = []
    for i in range(CLUSTERS):
        path = logs / f"{label}-qcluster-{i}.log"
        procs.append((Process([sys.executable, "manage.py", "qcluster"], env, path), path))
    for i in range(DISPATCHERS):
        path = logs / f"{label}-dispatcher-{i}.log"
        procs.append((Process([sys.executable, "manage.py", "rundispatcher"], env, path), path))
    try:
        for _proc, path in procs:
            marker = "dispatcher running" if "dispatcher" in path.name else "running."
            wait_for(
                lambda path=path, marker=marker: marker in path.read_text(errors="replace"),
                timeout=60,
                what=f"{path.name} to start",
            )
    except TimeoutError:
        for proc, _ in procs:
            proc.stop()
        raise
    return [proc for proc, _ in procs]


def drill(label, env, logs, plan, minutes):
    """Start one agent per (offset, cycle seconds) of `plan`, run `minutes` after the last start,
    stop them; return their scheduled runs."""
    from runner import services
    from runner.actors import Actor
    from runner.models import Agent, CycleRun

    procs = start_processes(env, logs, label)
    agents = []
    try:
        began = time.monotonic()
        for index, (offset, seconds) in enumerate(plan):
            time.sleep(max(0.0, began + offset - time.monotonic()))
            agent = Agent.objects.create(
                slug=f"{label}-{index}",
                name=f"{label} agent {index} ({seconds} s cycles)",
                kind="test-slow",
                parameters={"seconds": seconds, "step": 0.5},
                interval_minutes=1,
                timeout_seconds=120,
            )
            services.agent_start(agent=agent, actor=Actor.cli(), reason="bench/idle_workers.py")
            agents.append(agent)
        print(f"  {label}: {len(agents)} agents started; running {minutes:g} min ...", flush=True)
        time.sleep(minutes * 60)
        for agent in agents:
            services.agent_stop(agent=agent, actor=Actor.cli(), reason="bench/idle_workers.py")
        wait_for(
            lambda: not CycleRun.objects.filter(agent__in=agents, status="running").exists(),
            timeout=60,
            what="the last cycles to stop",
        )
    finally:
        for proc in procs:
            proc.stop(timeout=60)
    from django_q.models import OrmQ

    OrmQ.objects.all().delete()  # slots the baseline's clusters still held: no-ops by now
    return list(CycleRun.objects.filter(agent__in=agents, trigger="schedule"))


def summarize(label, runs):
    started = [r for r in runs if r.started_at is not None]
    delays = sorted((r.started_at - r.slot).total_seconds() for r in started)
    # Slots that fell due as the drill stopped its agents are skipped as "agent is stopped":
    # the drill's own end, not a cycle that waited.
    skipped = [
        r for r in runs if r.status == "skipped" and "agent is stopped" not in r.error_message
    ]
    late = [d for d in delays if d > LATE.total_seconds()]
    stats = {
        "n": len(delays),
        "p50": percentile(delays, 0.5),
        "p95": percentile(delays, 0.95),
        "max": delays[-1] if delays else float("nan"),
        "late": len(late),
        "skipped": len(skipped),
    }
    print(
        f"{label:<22} slot -> start over {stats['n']} cycles: p50 {stats['p50']:.2f} s, "
        f"p95 {stats['p95']:.2f} s, max {stats['max']:.2f} s; "
        f"{stats['late']} started > 1 s late; {stats['skipped']} slots skipped "
        f"(previous cycle still running)",
        flush=True,
    )
    return stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="per drill, after the starts")
    parser.add_argument("--seed", type=int, default=1, help="seeds the agents' start offsets")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_idle_workers"
    )
    parser.add_argument("--gate-only", action="store_true", help="skip the baseline drill")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        raise SystemExit("several clusters need PostgreSQL")
    rng = random.Random(args.seed)
    offsets = sorted(rng.uniform(0, 60) for _ in CYCLE_SECONDS)
    plan = list(zip(offsets, rng.sample(CYCLE_SECONDS, len(CYCLE_SECONDS)), strict=True))

    drop_database(args.database_url)
    ensure_database(args.database_url)
    env = django_env(args.database_url, Q_WORKERS=2, LOG_LEVEL="INFO")
    manage(env, "migrate", "--noinput")
    logs = Path(tempfile.mkdtemp(prefix="bench-idle-workers-"))
    print(
        f"database {args.database_url.rsplit('/', 1)[-1]}, logs {logs}; {CLUSTERS} clusters x 2 "
        f"workers, {DISPATCHERS} dispatchers; (start offset s, cycle s) per agent, every minute: "
        f"{[(round(o), c) for o, c in plan]}",
        flush=True,
    )
    os.environ.update(env)  # the same secret key: this process queues the first cycles
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()

    results = {}
    if not args.gate_only:
        runs = drill("baseline", {**env, "RUNNER_WORKER_GATE": "0"}, logs, plan, args.minutes)
        results["baseline"] = summarize("django-q2 pusher", runs)
    runs = drill("gate", {**env, "RUNNER_WORKER_GATE": "1"}, logs, plan, args.minutes)
    results["gate"] = summarize("free-worker gate", runs)
    if "baseline" in results:
        base, gate = results["baseline"], results["gate"]
        print(
            "ratios baseline / gate: "
            + ", ".join(
                f"{key} {base[key] / max(gate[key], 1e-3):.1f}x" for key in ("p50", "p95", "max")
            )
            + f"; late {base['late']} vs {gate['late']}, skipped {base['skipped']} vs "
            f"{gate['skipped']}"
        )


if __name__ == "__main__":
    main()
