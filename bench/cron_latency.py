"""Slot -> start delay of cron agents next to interval agents, through the real dispatcher.

    uv run python bench/cron_latency.py                                  # 5 + 5 agents, 3 minutes
    uv run python bench/cron_latency.py --agents 50 --minutes 3 \
        --database-url postgres://postgres@127.0.0.1:5432/bench_cron     # dropped and created

A real `manage.py qcluster` and `manage.py rundispatcher` run against a fresh database. Half the
agents are cron agents (`* * * * *` in America/New_York: the dispatcher evaluates the zone, the
windows and the jitter), half are interval agents (every minute, at half past each minute), so
each kind's slots come all at once and the two kinds never compete for workers. Each run does
20 ms of work. The bench prints the delay from each slot to its start for each kind, and the
cron/interval ratio of the medians and 95th percentiles measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.schedule_latency import describe, percentile, prepare_environment, start, stop  # noqa: E402


def create(count, *, kind):
    from runner import services
    from runner.actors import Actor

    values = {"kind": "bench-work", "interval_minutes": 1}
    if kind == "cron":
        values |= {"schedule_kind": "cron", "cron": "* * * * *", "timezone": "America/New_York"}
    agents = []
    for i in range(count):
        agent = services.agent_create(
            values={"slug": f"{kind}-{i}", **values}, actor=Actor.system()
        )
        agents.append(agent)
    return agents


def start_on_the_minute(interval, cron):
    """Start every agent so that the cron agents' slots fall on each minute and the interval
    agents' half a minute later: each kind's slots come together, the two kinds never compete.
    Then drop the start's own first runs, so only schedule slots are measured."""
    from django.utils import timezone

    from runner import services
    from runner.actors import Actor
    from runner.models import CycleRun

    now = timezone.now()
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (boundary - now).total_seconds() < 25:  # leave time to start them all before it
        boundary += timedelta(minutes=1)
    for agent in cron:
        services.agent_start(agent=agent, actor=Actor.system(), now=boundary - timedelta(minutes=1))
    for agent in interval:  # every minute from boundary - 90 s (in the past): slots at :30
        services.agent_start(
            agent=agent, actor=Actor.system(), now=boundary - timedelta(seconds=90)
        )
    deadline = time.monotonic() + 30
    while CycleRun.objects.filter(finished_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the start's cycles did not finish")
        time.sleep(0.1)
    return boundary


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def delays(agents, since):
    from runner.models import CycleRun

    found = CycleRun.objects.filter(
        agent__in=agents, slot__gte=since, started_at__isnull=False, trigger="schedule"
    ).values_list("slot", "started_at")
    return [(started - slot).total_seconds() for slot, started in found]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--agents", type=int, default=5, help="agents of each kind")
    parser.add_argument("--minutes", type=int, default=3, help="minute slots measured")
    options = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cron-latency-"))
    database_url = options.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    print(f"database: {database_url.split('@')[-1]}  logs: {tmp}")
    prepare_environment(database_url)

    cluster = start("qcluster", ["qcluster"], tmp)
    dispatcher = start("dispatcher", ["rundispatcher"], tmp)
    try:
        interval = create(options.agents, kind="interval")
        cron = create(options.agents, kind="cron")
        boundary = start_on_the_minute(interval, cron)
        print(
            f"{options.agents} cron + {options.agents} interval agents, every minute, "
            f"{options.minutes} slots each ..."
        )
        wait = (boundary - timezone_now()).total_seconds() + (options.minutes - 1) * 60 + 35
        time.sleep(max(wait, 0))
        from runner import services
        from runner.actors import Actor

        for agent in interval + cron:
            services.agent_stop(agent=agent, actor=Actor.system())
        interval_delays = delays(interval, boundary)
        cron_delays = delays(cron, boundary)
    finally:
        stop(dispatcher)
        stop(cluster)

    print(describe("interval agents: slot -> start", interval_delays))
    print(describe("cron agents:     slot -> start", cron_delays))
    expected = options.agents * options.minutes
    print(
        f"slots started: interval {len(interval_delays)}/{expected}, cron {len(cron_delays)}/{expected}"
    )
    median_ratio = statistics.median(cron_delays) / statistics.median(interval_delays)
    p95_ratio = percentile(cron_delays, 0.95) / percentile(interval_delays, 0.95)
    print(f"cron / interval: median {median_ratio:.2f}x, p95 {p95_ratio:.2f}x")


if __name__ == "__main__":
    main()
