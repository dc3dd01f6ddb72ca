"""Load on the runner API over real HTTP: requests/s and p50/p99 latency, as ratios to a baseline.

Starts gunicorn (one gthread worker) on 127.0.0.1 over a fresh database of its own (a SQLite
file, or `<name>_http` beside DATABASE_URL when that is PostgreSQL), then drives each
endpoint from concurrent clients for a bounded number of requests and time, and compares it with
a trivial DRF endpoint (same token authentication, no work) measured in the same run:

    uv run python bench/api_load.py [--concurrency 8] [--requests 1500] [--seconds 10]

Scenarios: the seed's GET /api/agent/status, GET /api/agents/{slug}/status/, and POST start/stop
(each client alternates start and stop on its own agent, so every request is an applied
transition: a locked row, a state change, a schedule write and an audit event).
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from tests.support.http_server import running_server  # noqa: E402

SETUP = """
from runner.models import Agent
for n in range({clients}):
    Agent.objects.get_or_create(slug=f"bench-{{n}}", defaults={{"name": f"bench {{n}}", "kind": "forecaster"}})
"""


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

    return [
        ("baseline GET /bench/ping (trivial DRF)", ping),
        ("GET /api/agent/status (seed)", seed_status),
        ("GET /api/agents/{slug}/status/", agent_status),
        ("POST /api/agents/{slug}/start|stop/", start_stop),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1500, help="per scenario (upper bound)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario (upper bound)")
    args = parser.parse_args()

    env = {"DJANGO_SETTINGS_MODULE": "bench.settings", "RUNNER_API_CONTROL_RATE": "10000000/min"}
    setup = SETUP.format(clients=args.concurrency)
    with running_server(env=env, setup_code=setup, username="bench", threads=8) as server:
        base_url, token = server.base_url, server.token
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
                print(f"{name}: {len(stats['errors'])} non-2xx answers, e.g. {stats['errors'][0]}")
            results.append((name, stats))

    baseline = results[0][1]
    database = "PostgreSQL" if "postgres" in os.environ.get("DATABASE_URL", "") else "SQLite"
    print(
        f"\nconcurrency {args.concurrency}, gunicorn 1 worker x 8 threads, {database}, 127.0.0.1\n"
        f"{'endpoint':42} {'n':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'rps/base':>9} {'p50/base':>9} {'p99/base':>9}"
    )
    for name, stats in results:
        print(
            f"{name:42} {stats['requests']:>6} {stats['rps']:>8.1f} {stats['p50_ms']:>8.2f} "
            f"{stats['p99_ms']:>8.2f} {stats['rps'] / baseline['rps']:>9.2f} "
            f"{stats['p50_ms'] / baseline['p50_ms']:>9.2f} {stats['p99_ms'] / baseline['p99_ms']:>9.2f}"
        )
    failed = any(stats["errors"] for _, stats in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
