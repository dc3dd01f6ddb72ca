"""Load on the runner API over real HTTP: requests/s and p50/p99 latency, as ratios to a baseline.

Starts gunicorn (one gthread worker, 8 threads) on 127.0.0.1 over a fresh database of its own (a
throwaway `<name>_api_load` beside DATABASE_URL when that is PostgreSQL, else a SQLite file), then
drives each endpoint from concurrent clients for a bounded number of requests and time, and
compares it with a trivial DRF endpoint (same token authentication, no work) measured in the
same run:

    DATABASE_URL=postgres://... uv run python bench/api_load.py [--concurrency 8] [--seconds 10]

Scenarios: the seed's GET /api/agent/status, GET /api/agents/{slug}/status/, POST start/stop (each
client alternates start and stop on its own agent, so every request is an applied transition: a
locked row, a state change, a schedule write, a queued task and an audit event) and POST
pause/resume (likewise, on agents started beforehand). Exits 1 on any non-2xx answer, and with
`--max-ratio R` also when a control scenario's p50 is above R x the baseline's.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.common import (  # noqa: E402
    django_shell,
    drop_database,
    ensure_database,
    free_port,
    gunicorn,
    manage,
    wait_for,
)

PORTS = range(19300, 19400)
SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from runner import services
from runner.actors import Actor
from runner.models import Agent
user, _ = get_user_model().objects.get_or_create(username="bench")
user.user_permissions.set(Permission.objects.filter(content_type__app_label="runner"))
for n in range({clients}):
    Agent.objects.get_or_create(slug=f"bench-{{n}}", defaults={{"name": f"bench {{n}}", "kind": "forecaster"}})
    paused, _ = Agent.objects.get_or_create(slug=f"pr-{{n}}", defaults={{"name": f"pr {{n}}", "kind": "forecaster"}})
    services.agent_start(agent=paused, actor=Actor.cli())
print(Token.objects.get_or_create(user=user)[0].key)
"""
CONTROL = ("start|stop", "pause|resume")


def drive(base_url, token, make_request, *, concurrency, total, seconds):
    """Run `make_request(client, worker, i)` from `concurrency` threads; returns stats."""
    latencies, errors = [], []
    lock = threading.Lock()
    per_worker = max(1, total // concurrency)
    stop_at = time.monotonic() + seconds

    def worker(number):
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            mine = []
            for i in range(per_worker):
                if time.monotonic() > stop_at:
                    break
                began = time.perf_counter()
                response = make_request(client, number, i)
                mine.append(time.perf_counter() - began)
                if response.status_code >= 300:
                    with lock:
                        errors.append(f"{response.status_code} {response.text[:120]}")
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


def scenarios():
    def ping(client, worker, i):
        return client.get("/bench/ping")

    def seed_status(client, worker, i):
        return client.get("/api/agent/status")

    def agent_status(client, worker, i):
        return client.get(f"/api/agents/bench-{worker}/status/")

    def start_stop(client, worker, i):
        action = "start" if i % 2 == 0 else "stop"
        return client.post(f"/api/agents/bench-{worker}/{action}/")

    def pause_resume(client, worker, i):
        action = "pause" if i % 2 == 0 else "resume"
        return client.post(f"/api/agents/pr-{worker}/{action}/")

    return [
        ("baseline GET /bench/ping (trivial DRF)", ping),
        ("GET /api/agent/status (seed)", seed_status),
        ("GET /api/agents/{slug}/status/", agent_status),
        ("POST /api/agents/{slug}/start|stop/", start_stop),
        ("POST /api/agents/{slug}/pause|resume/", pause_resume),
    ]


def server_database(tmp):
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        base, _, name = url.rpartition("/")
        return f"{base}/{name.split('?', 1)[0]}_api_load"
    return f"sqlite:///{tmp}/db.sqlite3"


def serve(tmp, database_url, concurrency):
    """Migrate, set up the bench user and agents, start gunicorn; returns (process, url, token)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "api-load-bench-key-not-for-production-0123456789abcdefghij",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "RUNNER_API_CONTROL_RATE": "10000000/min",
        "PYTHONPATH": str(BASE_DIR),
    }
    env.pop("REDIS_URL", None)
    manage(env, "migrate", "--noinput")
    token = django_shell(env, SETUP.format(clients=concurrency)).strip().splitlines()[-1]
    port = free_port(PORTS)
    process = gunicorn(port, env, Path(tmp) / "gunicorn.log", workers=1, threads=8)
    base_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{base_url}/bench/ping").status_code == 401, 30, what="gunicorn")
    return process, base_url, token


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1500, help="per scenario (upper bound)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario (upper bound)")
    parser.add_argument("--max-ratio", type=float, default=None, help="fail above this p50 ratio")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        database_url = server_database(tmp)
        postgres = database_url.startswith("postgres")
        if postgres:
            drop_database(database_url)
            ensure_database(database_url)
        process = None
        try:
            process, base_url, token = serve(tmp, database_url, args.concurrency)
            warm = drive(base_url, token, scenarios()[0][1], concurrency=2, total=100, seconds=5)
            assert not warm["errors"], warm["errors"][:3]
            results = []
            for name, make_request in scenarios():
                stats = drive(
                    base_url,
                    token,
                    make_request,
                    concurrency=args.concurrency,
                    total=args.requests,
                    seconds=args.seconds,
                )
                if stats["errors"]:
                    print(
                        f"{name}: {len(stats['errors'])} non-2xx answers, e.g. {stats['errors'][0]}"
                    )
                results.append((name, stats))
        finally:
            if process is not None:
                process.stop()
            if postgres:
                drop_database(database_url)

    print(report(results, args.concurrency, "PostgreSQL" if postgres else "SQLite"))
    failed = any(stats["errors"] for _, stats in results)
    baseline = results[0][1]
    if args.max_ratio is not None:
        for name, stats in results:
            if name.endswith(tuple(f"{pair}/" for pair in CONTROL)):
                ratio = stats["p50_ms"] / baseline["p50_ms"]
                if ratio > args.max_ratio:
                    print(f"{name}: p50 {ratio:.2f} x the baseline, above {args.max_ratio}")
                    failed = True
    return 1 if failed else 0


def report(results, concurrency, database):
    baseline = results[0][1]
    lines = [
        f"\nconcurrency {concurrency}, gunicorn 1 worker x 8 threads, {database}, 127.0.0.1",
        f"{'endpoint':42} {'n':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'rps/base':>9} {'p50/base':>9} {'p99/base':>9}",
    ]
    for name, stats in results:
        lines.append(
            f"{name:42} {stats['requests']:>6} {stats['rps']:>8.1f} {stats['p50_ms']:>8.2f} "
            f"{stats['p99_ms']:>8.2f} {stats['rps'] / baseline['rps']:>9.2f} "
            f"{stats['p50_ms'] / baseline['p50_ms']:>9.2f} {stats['p99_ms'] / baseline['p99_ms']:>9.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
