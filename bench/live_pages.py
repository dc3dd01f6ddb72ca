"""What open live admin pages cost: 100 tabs polling for a minute, as a ratio against one tab.

    uv run python bench/live_pages.py [--seconds 60] [--tabs 100] [--page agent|agents|overview|runs]

A real gunicorn (2 workers x 8 threads, production settings) on PostgreSQL, with 50 agents and
their runs. Each simulated tab does what runner/static/runner/live.js does in a visible browser
tab: it loads the page (a logged-in session), then every RUNNER_LIVE_POLL_SECONDS asks the page's
version URL with the page's ETag and live ticket, and fetches the page again when the answer is
200 (changed) or 403 (ticket expired). Three runs of `--seconds` each:

  1 tab                 the baseline
  N tabs                nothing changes: every poll is a 304
  N tabs + changes      the agent is paused or resumed every 10 s through the API, so every tab
                        fetches its page again after each change

For each: database transactions per second (pg_stat_database: xact_commit + xact_rollback of the
bench database; Django runs each query in its own transaction in autocommit), CPU seconds per
second of gunicorn's master and workers (/proc), polls and page loads per second, and each as a
ratio against the 1-tab run. PostgreSQL publishes a backend's counters when it goes idle (within
about 10 s), so each window is read after the load has stopped and the counters have settled.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench import common  # noqa: E402

AGENTS = 50
SETTLE_SECONDS = 12  # PostgreSQL's idle backends publish their counters within ~10 s
CHANGE_EVERY_SECONDS = 10
LIVE_ELEMENT = re.compile(r'<span id="runner-live"[^>]*>')
DATA = re.compile(r'data-([a-z-]+)="([^"]*)"')

SETUP = f"""
import json
from datetime import timedelta
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from rest_framework.authtoken.models import Token
from runner.models import Agent, CycleRun

user, _ = get_user_model().objects.get_or_create(username="bench-live", defaults={{"is_staff": True}})
user.user_permissions.set(Permission.objects.filter(
    content_type__app_label="runner", codename__in=["view_agent", "control_agent", "change_agent",
    "view_cyclerun", "view_auditevent"]))
now = timezone.now()
if not Agent.objects.filter(slug="bench-live-00").exists():
    for n in range({AGENTS}):
        agent = Agent.objects.create(slug=f"bench-live-{{n:02}}", name=f"Bench {{n}}", kind="test-ok")
        CycleRun.objects.bulk_create(
            CycleRun(agent=agent, trigger="schedule", status="succeeded" if i % 9 else "failed",
                     queued_at=now - timedelta(minutes=10 * i), started_at=now - timedelta(minutes=10 * i),
                     finished_at=now - timedelta(minutes=10 * i), duration_ms=1200, slot=now - timedelta(minutes=10 * i),
                     log_lines=[f"line {{k}}" for k in range(20)])
            for i in range(1, 41))
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
agent = Agent.objects.get(slug="bench-live-00")
print(json.dumps({{"session": session.session_key, "token": Token.objects.get_or_create(user=user)[0].key,
                  "agent_id": agent.pk, "agent": agent.slug}}))
"""


@dataclass
class Tally:
    polls: int = 0
    not_modified: int = 0
    page_loads: int = 0
    errors: list = field(default_factory=list)
    poll_latencies: list = field(default_factory=list)


def live_element(page_html):
    found = LIVE_ELEMENT.search(page_html)
    if not found:
        raise RuntimeError("the page has no live element")
    return {name: html.unescape(value) for name, value in DATA.findall(found.group(0))}


async def load(client, page_url, tally):
    response = await client.get(page_url)
    tally.page_loads += 1
    if response.status_code != 200:
        tally.errors.append(f"page {response.status_code}")
        return None
    return live_element(response.text)


async def tab(client, page_url, element, poll_seconds, stop_at, tally, rng):
    """One open tab, from its loaded page on: poll like live.js until stop_at."""
    await asyncio.sleep(rng.random() * poll_seconds)  # tabs were opened at different moments
    while element and time.monotonic() < stop_at:
        await asyncio.sleep(poll_seconds)
        started = time.perf_counter()
        response = await client.get(
            element["version-url"],
            headers={
                "If-None-Match": element["version"],
                "X-Runner-Live-Ticket": element["ticket"],
            },
        )
        tally.poll_latencies.append(time.perf_counter() - started)
        tally.polls += 1
        if response.status_code == 304:
            tally.not_modified += 1
        elif response.status_code in (200, 403):
            element = await load(client, page_url, tally)
        else:
            tally.errors.append(f"poll {response.status_code}")


async def change_agent(base_url, token, slug, stop_at):
    """Pause, then resume, then pause... the agent every CHANGE_EVERY_SECONDS, through the API."""
    verbs = ["pause", "resume"]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        headers = {"Authorization": f"Token {token}"}
        await client.post(f"/api/agents/{slug}/start/", headers=headers)
        index = 0
        while time.monotonic() + CHANGE_EVERY_SECONDS < stop_at:
            await asyncio.sleep(CHANGE_EVERY_SECONDS)
            await client.post(f"/api/agents/{slug}/{verbs[index % 2]}/", headers=headers)
            index += 1
        if index % 2:  # leave it running, as it started
            await client.post(f"/api/agents/{slug}/resume/", headers=headers)


async def open_tabs(
    base_url, session, page_url, tabs, seconds, poll_seconds, change=None, start=None
):
    """Open `tabs` tabs on the page (not measured), call `start()`, then poll for `seconds`."""
    rng = random.Random(20261202)
    limits = httpx.Limits(max_connections=tabs, max_keepalive_connections=tabs)
    async with httpx.AsyncClient(
        base_url=base_url, cookies={"sessionid": session}, limits=limits, timeout=30
    ) as client:
        opening = Tally()
        elements = await asyncio.gather(*(load(client, page_url, opening) for _ in range(tabs)))
        if start is not None:
            await asyncio.sleep(SETTLE_SECONDS)
            start()
        tally = Tally(errors=opening.errors)
        stop_at = time.monotonic() + seconds
        jobs = [tab(client, page_url, e, poll_seconds, stop_at, tally, rng) for e in elements]
        if change:
            jobs.append(change(stop_at))
        await asyncio.gather(*jobs)
    tally.poll_latencies.sort()
    return tally


def transactions(database_url):
    name = database_url.rsplit("/", 1)[-1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", [name]
        ).fetchone()
    return int(row[0])


def cpu_seconds(pid):
    """User + system CPU seconds of a process and its children (gunicorn's master and workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


@dataclass
class Window:
    name: str
    seconds: float
    tally: Tally
    xacts: int
    cpu: float

    @property
    def xact_rate(self):
        return self.xacts / self.seconds

    @property
    def cpu_rate(self):
        return self.cpu / self.seconds

    @property
    def request_rate(self):
        return (self.tally.polls + self.tally.page_loads) / self.seconds

    @property
    def xacts_per_poll(self):
        return self.xacts / max(self.tally.polls, 1)


def measure(name, database_url, server_pid, run):
    """Run `run(start)`, which opens its tabs and calls start() once they are open: the window
    is from there to the end of its polling."""
    before = {}

    def start():
        before.update(
            xacts=transactions(database_url), cpu=cpu_seconds(server_pid), at=time.monotonic()
        )

    tally = run(start)
    seconds = time.monotonic() - before["at"]
    cpu_used = cpu_seconds(server_pid) - before["cpu"]
    time.sleep(SETTLE_SECONDS)  # let the server's backends publish their counts
    # our own two reads each add one transaction; leave them out
    return Window(name, seconds, tally, transactions(database_url) - before["xacts"] - 1, cpu_used)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/bench_live_pages"
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tabs", type=int, default=100)
    parser.add_argument("--page", choices=["agent", "agents", "overview", "runs"], default="agent")
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    args = parser.parse_args()

    common.ensure_database(args.database_url)
    env = common.django_env(
        args.database_url,
        LOG_LEVEL="WARNING",
        RUNNER_LIVE_POLL_SECONDS=args.poll_seconds,
        DATABASE_CONN_MAX_AGE=600,
    )
    common.manage(env, "migrate", "--noinput")
    setup = json.loads(common.django_shell(env, SETUP).strip().splitlines()[-1])
    page_url = {
        "agent": f"/admin/runner/agent/{setup['agent_id']}/change/",
        "agents": "/admin/runner/agent/",
        "overview": "/admin/runner/overview/",
        "runs": "/admin/runner/cyclerun/",
    }[args.page]
    port = common.free_port()
    base_url = f"http://127.0.0.1:{port}"
    logs = Path(tempfile.mkdtemp(prefix="bench-live-pages-"))
    server = common.gunicorn(port, env, logs / "gunicorn.log", workers=2, threads=8)

    def tabs(count, change=False):
        def run(start):
            changer = None
            if change:

                def changer(stop_at):
                    return change_agent(base_url, setup["token"], setup["agent"], stop_at)

            return asyncio.run(
                open_tabs(
                    base_url,
                    setup["session"],
                    page_url,
                    count,
                    args.seconds,
                    args.poll_seconds,
                    changer,
                    start,
                )
            )

        return run

    try:
        common.wait_for(
            lambda: httpx.get(f"{base_url}/livez").status_code == 200, 60, what="/livez"
        )
        asyncio.run(open_tabs(base_url, setup["session"], page_url, 2, 3, args.poll_seconds))
        windows = [
            measure("1 tab (baseline)", args.database_url, server.pid, tabs(1)),
            measure(f"{args.tabs} tabs", args.database_url, server.pid, tabs(args.tabs)),
            measure(
                f"{args.tabs} tabs + changes",
                args.database_url,
                server.pid,
                tabs(args.tabs, change=True),
            ),
        ]
    finally:
        server.stop()

    base = windows[0]
    print(
        f"bench/live_pages.py: the {args.page} page ({page_url}), gunicorn 2x8 gthread on "
        f"PostgreSQL, {AGENTS} agents, polls every {args.poll_seconds:g} s, "
        f"{args.seconds:g} s per run, 127.0.0.1"
    )
    header = (
        f"{'run':<20} {'polls/s':>8} {'304s':>6} {'pages/s':>8} {'db xact/s':>10} "
        f"{'web cpu':>8} {'p50 ms':>7} {'p99 ms':>7} {'req x':>6} {'db x':>6} {'cpu x':>6}"
    )
    print(header)
    for w in windows:
        t = w.tally
        share = t.not_modified / t.polls if t.polls else 0
        print(
            f"{w.name:<20} {t.polls / w.seconds:>8.1f} {share:>6.0%} "
            f"{t.page_loads / w.seconds:>8.2f} {w.xact_rate:>10.1f} {w.cpu_rate:>8.3f} "
            f"{common.percentile(t.poll_latencies, 0.5) * 1000:>7.1f} "
            f"{common.percentile(t.poll_latencies, 0.99) * 1000:>7.1f} "
            f"{w.request_rate / base.request_rate:>6.1f} {w.xact_rate / base.xact_rate:>6.1f} "
            f"{w.cpu_rate / base.cpu_rate:>6.1f}"
        )
    for w in windows:
        print(f"  {w.name}: {w.xacts_per_poll:.3f} db transactions per poll (page loads included)")
    errors = [error for w in windows for error in w.tally.errors]
    print(f"web cpu: CPU seconds per second of gunicorn (1.0 = one core); server log: {logs}")
    print(f"errors: {len(errors)}" + (f" (first: {errors[:5]})" if errors else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
