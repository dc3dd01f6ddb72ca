"""Benchmark: the cycle-run changelist over a big table, against Django's defaults in the same run.

Fills `runner_cyclerun` up to --rows synthetic rows (benchmark data, not real runs), then times the
admin changelist pages an operator opens most (first page, a status filter, an agent filter, a deep
page, an error-text search) in two admins over the same data:

  ours      runner.admin.runs.CycleRunAdmin: no full count, a capped/estimated count, ordering on the
            primary key, heavy columns deferred, related rows joined;
  baseline  the same columns and filters with Django's defaults (full COUNT(*) twice per page,
            ordering by the model's Meta.ordering, the default paginator).

It prints the median time of each and the ratio baseline/ours, plus queries per page. Use a database
of its own (it keeps the rows for the next run):

    createdb -h 127.0.0.1 -U postgres ar_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ar_bench \\
        uv run python bench/admin_runs_changelist.py --rows 1000000
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib import admin  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from runner.admin.agent_list import RECENT_RUNS_FOR_RATE  # noqa: E402
from runner.admin.runs import CycleRunAdmin  # noqa: E402
from runner.models import FINISHED_STATUSES, Agent, CycleRun  # noqa: E402

AGENTS = 10

baseline_site = admin.AdminSite(name="baseline")


class BaselineRunAdmin(admin.ModelAdmin):
    """What a first admin for CycleRun would look like: the same page, Django's defaults."""

    list_display = CycleRunAdmin.list_display
    list_filter = CycleRunAdmin.list_filter
    date_hierarchy = CycleRunAdmin.date_hierarchy
    search_fields = CycleRunAdmin.search_fields
    status_badge = CycleRunAdmin.status_badge
    duration = CycleRunAdmin.duration
    error_short = CycleRunAdmin.error_short


class BaselineAgentAdmin(admin.ModelAdmin):
    """The obvious agent list: last outcome and success rate worked out per row."""

    list_display = ("slug", "name", "state", "last_outcome", "success_rate")

    @admin.display(description="Last outcome")
    def last_outcome(self, agent):
        run = agent.runs.filter(started_at__isnull=False).order_by("-started_at").first()
        return run.status if run else "-"

    @admin.display(description="Success")
    def success_rate(self, agent):
        recent = list(
            agent.runs.filter(status__in=FINISHED_STATUSES)
            .order_by("-queued_at")
            .values_list("status", flat=True)[:RECENT_RUNS_FOR_RATE]
        )
        return f"{recent.count('succeeded')}/{len(recent)}" if recent else "-"


baseline_site.register(CycleRun, BaselineRunAdmin)
baseline_site.register(Agent, BaselineAgentAdmin)
urlpatterns = [path("admin/", admin.site.urls), path("baseline/", baseline_site.urls)]


def fill(rows):
    """Synthetic runs (benchmark data): 80% succeeded, 15% failed with an error, 5% skipped."""
    for n in range(AGENTS):  # fixture rows for the benchmark only, written directly
        Agent.objects.get_or_create(
            slug=f"bench-{n}",
            defaults={"name": f"Bench {n} (benchmark data)", "kind": "forecaster"},
        )
    have = CycleRun.objects.count()
    if have >= rows:
        return have
    agent_ids = list(Agent.objects.filter(slug__startswith="bench-").values_list("pk", flat=True))
    missing = rows - have
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO runner_cyclerun (
                agent_id, trigger, status, queued_at, started_at, finished_at, duration_ms,
                missed_slots, worker, task_id, cancel_requested, trading_mode, config_snapshot,
                summary, error_type, error_message, traceback, log_lines)
            SELECT
                (%s::bigint[])[1 + i %% %s],
                CASE WHEN i %% 7 = 0 THEN 'manual' ELSE 'schedule' END,
                CASE WHEN i %% 20 = 0 THEN 'skipped' WHEN i %% 7 = 3 THEN 'failed'
                     ELSE 'succeeded' END,
                now() - make_interval(secs => i * 30),
                CASE WHEN i %% 20 = 0 THEN NULL ELSE now() - make_interval(secs => i * 30) END,
                CASE WHEN i %% 20 = 0 THEN NULL
                     ELSE now() - make_interval(secs => i * 30) + interval '2 seconds' END,
                2000, 0, 'bench:1', '', false, 'dry_run', '{}'::jsonb,
                '{"source": "benchmark data"}'::jsonb,
                CASE WHEN i %% 7 = 3 THEN 'HTTPError' ELSE '' END,
                CASE WHEN i %% 7 = 3 THEN 'benchmark error ' || (i %% 97) ELSE '' END,
                '', '["benchmark line"]'::jsonb
            FROM generate_series(%s, %s) AS i
            """,
            [agent_ids, len(agent_ids), have + 1, have + missing],
        )
        cursor.execute("ANALYZE runner_cyclerun")
        # A claim sets the agent's last_run to the start of the run it claims; do the same.
        cursor.execute(
            "UPDATE runner_agent a SET last_run = (SELECT MAX(started_at) FROM runner_cyclerun r"
            " WHERE r.agent_id = a.id)"
        )
    print(f"inserted {missing} rows in {time.perf_counter() - started:.1f} s")
    return CycleRun.objects.count()


def time_page(client, url, repeats):
    client.get(url)  # warm caches
    times, queries = [], 0
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    return statistics.median(times) * 1000, queries


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL (set DATABASE_URL); SQLite is the dev default only.")

    call_command("migrate", verbosity=0)
    total = fill(args.rows)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    agent_id = Agent.objects.filter(slug="bench-3").values_list("pk", flat=True).get()
    pages = {
        "runs: first page": "runner/cyclerun/",
        "runs: status=failed": "runner/cyclerun/?status__exact=failed",
        "runs: one agent": f"runner/cyclerun/?agent__id__exact={agent_id}",
        "runs: page 50": "runner/cyclerun/?p=50",
        "runs: search error": "runner/cyclerun/?q=error+42",
        "agents: list": "runner/agent/",
    }
    print(f"cycle runs in table: {total}; median of {args.repeats} requests each")
    print(f"{'page':<24}{'ours ms':>10}{'queries':>9}{'baseline ms':>13}{'queries':>9}{'ratio':>8}")
    with override_settings(ROOT_URLCONF=__name__, DEBUG=False, ALLOWED_HOSTS=["testserver"]):
        client = Client()
        client.force_login(user)
        for label, query in pages.items():
            ours, ours_q = time_page(client, f"/admin/{query}", args.repeats)
            base, base_q = time_page(client, f"/baseline/{query}", args.repeats)
            print(
                f"{label:<24}{ours:>10.1f}{ours_q:>9}{base:>13.1f}{base_q:>9}{base / ours:>7.1f}x"
            )
    print(f"(database: {settings.DATABASES['default']['NAME']})")


if __name__ == "__main__":
    main()
