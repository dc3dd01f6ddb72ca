"""A fleet on one machine: do a thousand no-op agents every minute start on time?

    uv run python bench/fleet.py                       # 1, 50 and 200 agents, 2 min each, + burst
    uv run python bench/fleet.py --agents 1000 --minutes 3
    uv run python bench/fleet.py --broker redis        # Redis at 127.0.0.1:6379 (db 11)
    uv run python bench/fleet.py --quick               # the smoke test's size: seconds, not minutes

For each size N it starts one `manage.py qcluster` (2 workers) and one `manage.py rundispatcher`
as real subprocesses on a fresh PostgreSQL database, gives N no-op agents a 1-minute interval with
their first slots spread evenly over a minute (as agents started at different times are), and
runs them for `--minutes`. It prints slot -> start p50/p95/max, how many slots ran, how many were
recorded as skipped (with their reasons) and how many had no record when the run ended (still
queued behind the others: "lost" in --json), and the CPU of the cluster's process tree (from
/proc) and of the dispatcher. The burst case gives `--burst` agents
the same slot and reports when the last one started.

Baseline, in the same run and on the same broker and cluster: plain django-q2 no-op tasks queued
at the same moments by this process (no dispatcher, no runner), start - moment, printed as
ratios runner / plain. The databases `<name>_<N>` are dropped and created afresh: never point
`--database-url` at real data.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
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
    postgres_admin,
    wait_for,
)

SECONDS_PER_SLOT = 60  # every agent's interval
LEAD_SECONDS = 5.0  # the first slot comes this long after the agents are created
SETTLE_SECONDS = 10.0  # slots this close to the end are not counted (they may not have run yet)
CLK_TCK = os.sysconf("SC_CLK_TCK")


class NoopAgent:
    """Does nothing: what is measured is the runner around it."""

    def run(self, context):
        return {}


def plain_noop(moment, path):
    """The baseline's task: appends when it started, so no result table is needed to read it."""
    started = time.time()
    with open(path, "a") as out:
        out.write(f"{moment} {started}\n")


class SessionCpu:
    """CPU seconds used by every process of a session (a subprocess started in its own session,
    and all it forks), sampled every second so a process that exits still counts."""

    def __init__(self, sid):
        self.sid, self.ticks, self._stop = sid, {}, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.sid:  # field 6 (session), after pid and comm
                self.ticks[entry.name] = int(fields[11]) + int(fields[12])  # utime + stime

    def _loop(self):
        while not self._stop.wait(1.0):
            self._sample()

    def seconds(self):
        self._sample()
        return sum(self.ticks.values()) / CLK_TCK

    def stop(self):
        self._stop.set()


def stop_all(procs):
    """Stop each process, then whatever of its session is left (a worker the cluster orphaned)."""
    for proc in procs:
        proc.stop(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def fresh_database(template_url, size_url):
    drop_database(size_url)
    name, template = size_url.rsplit("/", 1)[1], template_url.rsplit("/", 1)[1]
    with postgres_admin(template_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def start_processes(env, logs, label, *, dispatcher):
    qlog = logs / f"{label}-{'runner' if dispatcher else 'plain'}-q.log"
    procs = [Process([sys.executable, "manage.py", "qcluster"], env, qlog)]
    if dispatcher:
        procs.append(
            Process([sys.executable, "manage.py", "rundispatcher"], env, logs / f"{label}-d.log")
        )
    try:
        for proc, marker in zip(procs, ("running.", "dispatcher running"), strict=False):
            path = Path(proc.log.name)
            ready = lambda p=path, m=marker: m in p.read_text(errors="replace")  # noqa: E731
            wait_for(ready, 60, what=path.name)
    except TimeoutError:
        stop_all(procs)
        raise
    return procs


def create_fleet(count, lead, spread):
    """`count` running no-op agents with their Schedule rows, first slots spread over `spread` s
    from `lead` s after they exist. Written an hour ahead, then moved into place by one update
    each, so the slots do not depend on how long writing a thousand agents took."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone
    from django_q.models import Schedule

    from runner import scheduling
    from runner.models import Agent, AgentState

    ahead = timezone.now() + timedelta(hours=1)
    with transaction.atomic():
        for i in range(count):
            agent = Agent.objects.create(
                slug=f"fleet-{i}",
                name=f"fleet agent {i}",
                kind="bench-noop",
                interval_minutes=1,
                timeout_seconds=60,
                state=AgentState.RUNNING,
                next_run=ahead + timedelta(seconds=spread * i / count),
            )
            scheduling.sync_schedule(agent)  # as agent_start writes it, without its first cycle
    with transaction.atomic():
        shift = ahead - (timezone.now() + timedelta(seconds=lead))
        Agent.objects.filter(slug__startswith="fleet-").update(next_run=F("next_run") - shift)
        rows = Schedule.objects.filter(name__startswith=scheduling.SCHEDULE_PREFIX)
        rows.update(next_run=F("next_run") - shift)
    return list(Agent.objects.filter(slug__startswith="fleet-").order_by("next_run"))


def retire_fleet():
    """Stop the fleet without a trace in the broker, so django-q2's own scheduler does not send
    its slots into the baseline that follows on the same database."""
    from django_q.models import OrmQ, Schedule

    from runner import scheduling
    from runner.models import Agent, AgentState

    Schedule.objects.filter(name__startswith=scheduling.SCHEDULE_PREFIX).delete()
    Agent.objects.filter(slug__startswith="fleet-").update(state=AgentState.STOPPED, next_run=None)
    OrmQ.objects.all().delete()


def expected_slots(agents, until):
    pairs = set()
    for agent in agents:
        slot = agent.next_run
        while slot <= until:
            pairs.add((agent.pk, slot))
            slot += timedelta(seconds=SECONDS_PER_SLOT)
    return pairs


def run_fleet(env, logs, label, count, spread, seconds):
    """Runner: agents, a cluster and a dispatcher; returns the slot -> start stats."""
    from django.db import connections
    from django.utils import timezone

    from runner.models import CycleRun

    connections.close_all()
    procs = start_processes(env, logs, label, dispatcher=True)
    cpu = [SessionCpu(proc.pid) for proc in procs]
    try:
        agents = create_fleet(count, LEAD_SECONDS, spread)
        first = agents[0].next_run
        time.sleep(max(0.0, (first - timezone.now()).total_seconds()))
        cpu_start = [c.seconds() for c in cpu]
        time.sleep(seconds)
        cpu_used = [c.seconds() - s for c, s in zip(cpu, cpu_start, strict=True)]
    finally:
        stop_all(procs)
        for c in cpu:
            c.stop()
    retire_fleet()
    until = first + timedelta(seconds=seconds - SETTLE_SECONDS)
    wanted = expected_slots(agents, until)
    runs = {
        (r.agent_id, r.slot): r
        for r in CycleRun.objects.filter(agent__in=agents, trigger="schedule")
        if (r.agent_id, r.slot) in wanted
    }
    delays = sorted(
        (r.started_at - r.slot).total_seconds()
        for r in runs.values()
        if r.started_at is not None and r.status != "skipped"
    )
    reasons = collections.Counter(r.error_message for r in runs.values() if r.status == "skipped")
    late = sorted(
        (r for r in runs.values() if r.started_at is not None and r.status != "skipped"),
        key=lambda r: r.slot - r.started_at,
    )[:5]
    return {
        "slots": len(wanted),
        "ran": len(delays),
        "skipped": sum(reasons.values()),
        "reasons": dict(reasons),
        "lost": len(wanted) - len(runs),
        "cluster_cpu": cpu_used[0] / seconds,
        "dispatcher_cpu": cpu_used[1] / seconds,
        # when the latest starts happened (s after the first slot): where to look for a stall
        "latest": [
            (
                round((r.slot - first).total_seconds(), 1),
                round((r.started_at - r.slot).total_seconds(), 2),
            )
            for r in late
        ],
        **latency(delays),
    }


def run_plain(env, logs, label, count, spread, seconds):
    """Baseline: the same cluster running plain no-op tasks queued at the same moments."""
    from django.db import connections
    from django_q.tasks import async_task

    connections.close_all()
    path = logs / f"{label}-plain.txt"
    path.touch()
    procs = start_processes(env, logs, label, dispatcher=False)
    cpu = SessionCpu(procs[0].pid)
    try:
        first = time.time() + LEAD_SECONDS
        moments = sorted(
            first + spread * i / count + SECONDS_PER_SLOT * k
            for i in range(count)
            for k in range(int(seconds // SECONDS_PER_SLOT) + 1)
            if spread * i / count + SECONDS_PER_SLOT * k <= seconds - SETTLE_SECONDS
        )
        time.sleep(max(0.0, first - time.time()))
        cpu_start = cpu.seconds()
        for moment in moments:
            time.sleep(max(0.0, moment - time.time()))
            async_task("bench.fleet.plain_noop", moment, str(path))
        time.sleep(max(0.0, first + seconds - time.time()))
        cpu_used = cpu.seconds() - cpu_start
    finally:
        stop_all(procs)
        cpu.stop()
    started = dict(line.split() for line in path.read_text().splitlines())
    delays = sorted(float(started[repr(m)]) - m for m in moments if repr(m) in started)
    return {
        "slots": len(moments),
        "ran": len(delays),
        "lost": len(moments) - len(delays),
        "cluster_cpu": cpu_used / seconds,
        **latency(delays),
    }


def latency(delays):
    return {
        "p50": percentile(delays, 0.5),
        "p95": percentile(delays, 0.95),
        "max": delays[-1] if delays else float("nan"),
    }


def report(label, runner, plain):
    print(
        f"{label:<22} runner: slot->start p50 {runner['p50']:.2f} / p95 {runner['p95']:.2f} / "
        f"max {runner['max']:.2f} s; {runner['ran']} of {runner['slots']} slots ran, "
        f"{runner['skipped']} skipped, {runner['lost']} without a record at the end; cluster CPU "
        f"{runner['cluster_cpu']:.0%} of a core, dispatcher {runner['dispatcher_cpu']:.0%}",
        flush=True,
    )
    print(f"{'':<22} latest starts (s after the first slot, s late): {runner['latest']}")
    if runner["reasons"]:
        print(f"{'':<22} skipped because: {json.dumps(runner['reasons'])}")
    if plain is not None:
        print(
            f"{'':<22} plain django-q2: p50 {plain['p50']:.2f} / p95 {plain['p95']:.2f} / max "
            f"{plain['max']:.2f} s, {plain['ran']} of {plain['slots']} ran, cluster CPU "
            f"{plain['cluster_cpu']:.0%}; ratios runner/plain p95 "
            f"{runner['p95'] / max(plain['p95'], 1e-3):.1f}x, max "
            f"{runner['max'] / max(plain['max'], 1e-3):.1f}x",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="1,50,200", help="comma-separated fleet sizes")
    parser.add_argument("--minutes", type=float, default=2.0, help="per fleet size")
    parser.add_argument("--burst", type=int, default=200, help="agents sharing one slot (0: none)")
    parser.add_argument("--broker", choices=("orm", "redis"), default="orm")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--no-baseline", action="store_true", help="skip plain django-q2")
    parser.add_argument("--quick", action="store_true", help="10 agents over 10 s, 20 s, burst 10")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_fleet")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        raise SystemExit("the fleet bench needs PostgreSQL")
    sizes = [int(n) for n in args.agents.split(",") if n]
    seconds, burst, spread = args.minutes * 60, args.burst, float(SECONDS_PER_SLOT)
    if args.quick:
        sizes, seconds, burst, spread = [10], 20.0, min(burst, 10), 10.0
    extra = {"Q_WORKERS": 2, "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": 1}
    kinds = {"bench-noop": "bench.fleet.NoopAgent"}
    env = django_env(args.database_url, RUNNER_EXTRA_AGENT_KINDS=json.dumps(kinds), **extra)
    if args.broker == "redis":
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    template = args.database_url
    drop_database(template)
    ensure_database(template)
    manage(env, "migrate", "--noinput")
    logs = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    print(
        f"broker {args.broker}, 1 qcluster x 2 workers + 1 rundispatcher, logs {logs}", flush=True
    )

    cases = [(f"{n} agents / minute", n, spread, seconds) for n in sizes]
    if burst:
        cases.append((f"burst: {burst} in 1 s", burst, 1.0, 20.0 + SETTLE_SECONDS))
    results = {}
    for label, count, spread, length in cases:
        url = f"{template}_{count}_{int(spread)}"
        fresh_database(template, url)
        case_env = {**env, "DATABASE_URL": url}
        os.environ.update(case_env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        setup_django(url)
        tag = label.split(":")[0].replace(" ", "-").replace("/", "")
        _flush_redis(args)
        runner = run_fleet(case_env, logs, tag, count, spread, length)
        plain = None
        if not args.no_baseline:
            _flush_redis(args)
            plain = run_plain(case_env, logs, tag, count, spread, length)
        report(label, runner, plain)
        results[label] = {"runner": runner, "plain": plain}
        from django.db import connections

        connections.close_all()
        drop_database(url)
    drop_database(template)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


def setup_django(url):
    """Point this process's Django at the case's database (set up once, then switched)."""
    import django
    from django.conf import settings

    if not settings.configured:
        django.setup()
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict["NAME"] = url.rsplit("/", 1)[1]


def _flush_redis(args):
    if args.broker == "redis":
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()


if __name__ == "__main__":
    main()
