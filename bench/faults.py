"""Fault benchmark: kill -9 of qcluster workers and PostgreSQL restarts during scheduled cycles.

    uv run python bench/faults.py [--agents 12] [--fault-seconds 120] [--recovery-seconds 90]

Runs two `manage.py qcluster` processes (two workers each) against PostgreSQL. Agents of the slow,
cooperative test kind (3 s cycles) run every minute on real django-q2 schedules, staggered over
the minute. During the fault window the bench repeatedly kills with SIGKILL the worker process
that is running a cycle (taken from the run's `worker` field, and only if it is a child of a
cluster this bench started), and restarts PostgreSQL. Then it lets the system recover without
faults and reports, from the database:

  cycles lost        scheduled slots (due before the cut-off) with no run and not folded into a
                     later run as a missed slot (must be zero)
  runs left running  runs still `running` whose lease has expired after recovery (must be zero)
  overlapping runs   two runs of one agent whose [start, finish] intervals overlap (must be zero)
  time to recover    from each fault to the end of the next successful cycle

By default PostgreSQL is a private cluster created for the run (initdb in a temporary directory,
a port in 18800-18899), so restarting it disturbs nobody else. `--system-cluster` restarts the
machine's cluster with `pg_ctlcluster --skip-systemctl-redirect 15 main restart` instead (every
other user of that server sees the restart too).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Process, django_env, free_port, manage  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
LEASE_SECONDS = 6


class PrivatePostgres:
    """A throwaway PostgreSQL cluster owned by the `postgres` OS user, on 127.0.0.1 only."""

    def __init__(self, port):
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="bench-faults-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        self.url = f"postgres://postgres@127.0.0.1:{port}/agent_runner_faults"

    def _as_postgres(self, *args):
        command = [str(a) for a in args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _ctl(self, action, *extra):
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._as_postgres(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.dir / "server.log",
            "-o",
            options,
            "-w",
            "-t",
            "60",
            action,
            *extra,
        )

    def start(self):
        self._ctl("start")
        import psycopg

        with psycopg.connect(
            f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute('CREATE DATABASE "agent_runner_faults"')

    def restart(self):
        self._ctl("restart", "-m", "fast")

    def stop(self):
        try:
            self._ctl("stop", "-m", "fast")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class SystemPostgres:
    def __init__(self, url):
        self.url = url

    def start(self):
        from bench.common import drop_database, ensure_database

        drop_database(self.url)
        ensure_database(self.url)

    def restart(self):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"],
            check=True,
            timeout=120,
        )

    def stop(self):
        pass


def descendants(pid):
    """All descendant pids of `pid` (from /proc), so the bench only ever kills its own processes."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def retrying(fn, attempts=60):
    """Run a database read, reconnecting while PostgreSQL restarts."""
    from django.db import connection

    for attempt in range(attempts):
        try:
            return fn()
        except Exception:
            connection.close()
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=12)
    parser.add_argument("--cycle-seconds", type=float, default=5.0)
    parser.add_argument("--fault-seconds", type=float, default=120)
    parser.add_argument("--recovery-seconds", type=float, default=90)
    parser.add_argument("--kill-every", type=float, default=6)
    parser.add_argument("--pg-restart-every", type=float, default=40)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--system-cluster", action="store_true")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ar_i8_faults")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)

    postgres = (
        SystemPostgres(args.database_url) if args.system_cluster else PrivatePostgres(free_port())
    )
    postgres.start()
    env = django_env(
        postgres.url, Q_WORKERS=args.workers, RUNNER_LEASE_SECONDS=LEASE_SECONDS, LOG_LEVEL="INFO"
    )
    logs = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    clusters = []
    try:
        manage(env, "migrate", "--noinput")
        os.environ.update(env)
        os.environ["LOG_LEVEL"] = "WARNING"  # this driver's own logging; the clusters log INFO
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        import django

        django.setup()
        return run(args, env, postgres, logs, clusters)
    finally:
        for cluster in clusters:
            cluster.stop(timeout=60)
        postgres.stop()


def run(args, env, postgres, logs, clusters):
    from django.db import connection
    from django.utils import timezone

    from runner import services
    from runner.actors import Actor
    from runner.models import Agent, CycleRun

    agents = []
    for index in range(args.agents):
        agents.append(
            Agent.objects.create(
                slug=f"fault-{index:02d}",
                name=f"Fault bench agent {index}",
                kind="test-slow",
                parameters={"seconds": args.cycle_seconds, "step": 0.1},
                interval_minutes=1,
                timeout_seconds=60,
                # keep every agent scheduled through the faults (a trip would stop its cycles)
                max_consecutive_failures=1000,
            )
        )
    for index in range(args.clusters):
        clusters.append(
            Process([sys.executable, "manage.py", "qcluster"], env, logs / f"qcluster-{index}.log")
        )
    time.sleep(3)
    # Start the agents staggered over one interval, so cycles are spread across the minute.
    for agent in agents:
        services.agent_start(agent=agent, actor=Actor.cli(), reason="bench/faults.py")
        time.sleep(60 / len(agents))

    bench_start = timezone.now()
    fault_end = time.monotonic() + args.fault_seconds
    next_kill = time.monotonic() + args.kill_every
    next_restart = time.monotonic() + args.pg_restart_every
    faults = []  # (kind, wall time)
    cluster_pids = {c.pid for c in clusters}
    print(
        f"fault window {args.fault_seconds:g} s: kill -9 every {args.kill_every:g} s, "
        f"PostgreSQL restart every {args.pg_restart_every:g} s",
        flush=True,
    )
    while time.monotonic() < fault_end:
        now = time.monotonic()
        if now >= next_restart:
            at = timezone.now()
            started = time.monotonic()
            postgres.restart()
            faults.append(("pg_restart", at))
            print(
                f"  {at:%H:%M:%S} PostgreSQL restarted ({time.monotonic() - started:.1f} s)",
                flush=True,
            )
            connection.close()
            next_restart = now + args.pg_restart_every
        elif now >= next_kill:
            ours = set().union(*(descendants(pid) for pid in cluster_pids))
            running = retrying(
                lambda: list(CycleRun.objects.filter(status="running").values_list("pk", "worker"))
            )
            victims = [
                (pk, int(w.rsplit(":", 1)[1]))
                for pk, w in running
                if w.rsplit(":", 1)[-1].isdigit()
            ]
            victims = [(pk, pid) for pk, pid in victims if pid in ours]
            if victims:
                run_id, pid = random.choice(victims)
                os.kill(pid, signal.SIGKILL)
                at = timezone.now()
                faults.append(("kill_worker", at))
                print(f"  {at:%H:%M:%S} kill -9 worker {pid} (running run {run_id})", flush=True)
                next_kill = now + args.kill_every
            else:
                next_kill = now + 0.5  # nothing running right now; look again shortly
        time.sleep(0.1)

    fault_end_wall = timezone.now()
    print(f"recovery window {args.recovery_seconds:g} s (no faults)", flush=True)
    time.sleep(args.recovery_seconds)
    alive = [c.popen.poll() is None for c in clusters]
    end = timezone.now()
    report(args, agents, faults, bench_start, fault_end_wall, end, alive)
    return 0


def report(args, agents, faults, bench_start, fault_end, end, alive):
    from django.db.models import Sum

    from runner.models import CycleRun

    runs = retrying(
        lambda: list(CycleRun.objects.filter(agent__in=agents).order_by("agent_id", "started_at"))
    )
    # Slots due before this cut-off must have been claimed by the end (scheduler tick is 30 s).
    cutoff = end - timedelta(seconds=45)
    lost = overlaps = stale_running = 0
    folded = 0
    for agent in agents:
        mine = [r for r in runs if r.agent_id == agent.pk]
        scheduled = sorted(
            (r for r in mine if r.trigger == "schedule" and r.slot), key=lambda r: r.slot
        )
        if not scheduled:
            lost += 1
            continue
        first = scheduled[0].slot
        interval = timedelta(minutes=agent.interval_minutes)
        expected = int((cutoff - first) / interval) + 1 if cutoff >= first else 0
        covered = sum(1 + r.missed_slots for r in scheduled if r.slot <= cutoff)
        folded += sum(r.missed_slots for r in scheduled if r.slot <= cutoff)
        lost += max(expected - covered, 0)
        timeline = [r for r in mine if r.started_at and r.status != "skipped"]
        for earlier, later in zip(timeline, timeline[1:], strict=False):
            if later.started_at < (earlier.finished_at or end):
                overlaps += 1
        stale_running += sum(
            1
            for r in mine
            if r.status == "running" and r.lease_expires_at and r.lease_expires_at < end
        )

    by_status = {}
    for r in runs:
        if r.started_at and r.started_at >= bench_start:
            by_status[r.status] = by_status.get(r.status, 0) + 1
    successes = sorted(r.finished_at for r in runs if r.status == "succeeded" and r.finished_at)
    recover = {}
    for kind, at in faults:
        after = next((t for t in successes if t > at), None)
        recover.setdefault(kind, []).append((after - at).total_seconds() if after else float("inf"))
    missed_total = retrying(
        lambda: CycleRun.objects.filter(agent__in=agents).aggregate(n=Sum("missed_slots"))["n"] or 0
    )

    print()
    print(
        f"bench/faults.py: {len(agents)} agents (1-minute schedules, {args.cycle_seconds:g} s cycles), "
        f"{args.clusters} qclusters x {args.workers} workers, lease {LEASE_SECONDS} s"
    )
    print(
        f"faults: {sum(k == 'kill_worker' for k, _ in faults)} worker kill -9, "
        f"{sum(k == 'pg_restart' for k, _ in faults)} PostgreSQL restarts in {args.fault_seconds:g} s; "
        f"then {args.recovery_seconds:g} s without faults"
    )
    print(
        f"runs started since the first fault window began, by status: {dict(sorted(by_status.items()))}"
    )
    print(f"cycles lost (slots with no trace):       {lost}")
    print(
        f"slots folded into a later run (missed):   {folded} (all agents, whole run: {missed_total})"
    )
    print(f"runs left running (lease expired):        {stale_running}")
    print(f"overlapping runs:                         {overlaps}")
    for kind, values in recover.items():
        finite = [v for v in values if v != float("inf")]
        text = (
            f"median {statistics.median(finite):.1f} s, max {max(finite):.1f} s"
            if finite
            else "never"
        )
        never = len(values) - len(finite)
        print(
            f"time to recover after {kind:<12} {text}"
            + (f" ({never} never recovered)" if never else "")
        )
    print(f"qclusters alive at the end: {sum(alive)}/{len(alive)}")
    ok = lost == 0 and stale_running == 0 and overlaps == 0 and all(alive)
    print("result:", "OK" if ok else "PROBLEMS FOUND")
    return ok


if __name__ == "__main__":
    sys.exit(main())
