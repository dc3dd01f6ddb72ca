"""Load benchmark: a real gunicorn server on PostgreSQL under concurrent clients on 127.0.0.1.

    uv run python bench/load.py [--phase-seconds 5] [--concurrency 16]

Starts `gunicorn config.wsgi` (production settings, DEBUG off) and one qcluster beside it on the
bench database, then hits each endpoint for a bounded time with concurrent keep-alive clients:
/livez (the trivial baseline: no database), /healthz, and, when the API is on this branch, the
agent status and the pause/resume control endpoints. Prints requests per second, p50, p99 and
errors per endpoint, and each endpoint's throughput and p99 as a ratio of the baseline measured in
the same run. Errors are transport failures and any status outside the endpoint's expected set
(5xx always counts); they must be zero.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.common import (  # noqa: E402
    Process,
    django_env,
    django_shell,
    ensure_database,
    free_port,
    gunicorn,
    manage,
    percentile,
    wait_for,
)

AGENT = "bench-load"

SETUP = f"""
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import Resolver404, resolve
from runner import services
from runner.actors import Actor
from runner.models import Agent

def present(path):
    try:
        resolve(path)
        return True
    except Resolver404:
        return False

user, _ = get_user_model().objects.get_or_create(username="bench-load", defaults={{"is_staff": True}})
user.user_permissions.add(*Permission.objects.filter(
    content_type__app_label="runner", codename__in=["view_agent", "control_agent", "change_agent"]))
from rest_framework.authtoken.models import Token
token, _ = Token.objects.get_or_create(user=user)
agent, _ = Agent.objects.get_or_create(slug="{AGENT}", defaults={{
    "name": "Load benchmark agent", "kind": "test-ok", "interval_minutes": 600}})
if agent.state in ("stopped", "error"):
    services.agent_start(agent=agent, actor=Actor.cli(), reason="bench/load.py setup")
print(json.dumps({{
    "token": token.key,
    "status": present("/api/agents/{AGENT}/status/"),
    "control": present("/api/agents/{AGENT}/pause/") and present("/api/agents/{AGENT}/resume/"),
    "seed_status": present("/api/agent/status"),
}}))
"""


@dataclass
class Endpoint:
    name: str
    requests: list  # [(method, path)] cycled through by each client
    ok: set = field(default_factory=lambda: {200})
    headers: dict = field(default_factory=dict)


@dataclass
class Result:
    endpoint: str
    count: int
    errors: int
    seconds: float
    latencies: list
    error_samples: list

    @property
    def rps(self):
        return self.count / self.seconds

    def ms(self, fraction):
        return percentile(self.latencies, fraction) * 1000


async def hammer(base_url, endpoint: Endpoint, seconds, concurrency):
    latencies, errors, samples = [], 0, []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=30, headers=endpoint.headers
    ) as client:

        async def one(method, path):
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.request(method, path)
                status = response.status_code
            except httpx.HTTPError as exc:
                status = f"{type(exc).__name__}"
            latencies.append(time.perf_counter() - started)
            if status not in endpoint.ok:
                errors += 1
                if len(samples) < 5:
                    samples.append(f"{method} {path} -> {status}")

        # warm up connections and caches (not measured)
        for method, path in endpoint.requests * 3:
            await one(method, path)
        latencies.clear()
        errors = 0
        stop_at = time.perf_counter() + seconds

        async def client_loop(offset):
            index = offset
            while time.perf_counter() < stop_at:
                method, path = endpoint.requests[index % len(endpoint.requests)]
                index += 1
                await one(method, path)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(endpoint.name, len(latencies), errors, elapsed, latencies, samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ar_i8")
    parser.add_argument("--phase-seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    args = parser.parse_args()

    ensure_database(args.database_url)
    env = django_env(args.database_url, Q_WORKERS=1, LOG_LEVEL="INFO")
    manage(env, "migrate", "--noinput")
    setup = json.loads(django_shell(env, SETUP).strip().splitlines()[-1])
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    logs = Path(tempfile.mkdtemp(prefix="bench-load-"))

    endpoints = [
        Endpoint("livez (baseline)", [("GET", "/livez")]),
        Endpoint("healthz", [("GET", "/healthz")]),
    ]
    auth = {"Authorization": f"Token {setup['token']}"}
    if setup["status"]:
        endpoints.append(
            Endpoint("api status", [("GET", f"/api/agents/{AGENT}/status/")], headers=auth)
        )
    if setup["seed_status"]:
        endpoints.append(Endpoint("seed status", [("GET", "/api/agent/status")], headers=auth))
    if setup["control"]:
        endpoints.append(
            Endpoint(
                "api pause/resume",
                [("POST", f"/api/agents/{AGENT}/pause/"), ("POST", f"/api/agents/{AGENT}/resume/")],
                ok={200, 201, 202, 409},  # 409: a refused transition (already paused) is correct
                headers=auth,
            )
        )
    missing = [
        name
        for name, there in (("status", setup["status"]), ("control", setup["control"]))
        if not there
    ]

    server = gunicorn(
        port,
        env,
        logs / "gunicorn.log",
        workers=args.gunicorn_workers,
        threads=args.gunicorn_threads,
    )
    cluster = Process([sys.executable, "manage.py", "qcluster"], env, logs / "qcluster.log")
    try:
        wait_for(
            lambda: httpx.get(f"{base_url}/healthz").status_code == 200, 90, what="/healthz 200"
        )
        results = [
            asyncio.run(hammer(base_url, endpoint, args.phase_seconds, args.concurrency))
            for endpoint in endpoints
        ]
    finally:
        server.stop()
        cluster.stop()

    baseline = results[0]
    print(
        f"bench/load.py: gunicorn {args.gunicorn_workers}x{args.gunicorn_threads} gthread on PostgreSQL, "
        f"{args.concurrency} concurrent clients, {args.phase_seconds:g} s per endpoint, 127.0.0.1"
    )
    print(
        f"{'endpoint':<20} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'req/s ratio':>11} {'p99 ratio':>9}"
    )
    for r in results:
        print(
            f"{r.endpoint:<20} {r.count:>8} {r.rps:>8.0f} {r.ms(0.5):>8.1f} {r.ms(0.99):>8.1f} "
            f"{r.errors:>6} {r.rps / baseline.rps:>11.2f} {r.ms(0.99) / baseline.ms(0.99):>9.2f}"
        )
        for sample in r.error_samples:
            print(f"    error: {sample}")
    if missing:
        print(f"(API {' and '.join(missing)} endpoints are not on this branch; not measured)")
    print(f"server and cluster logs: {logs}")
    total_errors = sum(r.errors for r in results)
    print(f"errors: {total_errors}")
    return 1 if total_errors else 0


if __name__ == "__main__":
    sys.exit(main())
