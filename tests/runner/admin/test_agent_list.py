"""The agents list: state badge, next run, last outcome and success rate in one query."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import AgentFactory, CycleRunFactory

pytestmark = pytest.mark.django_db


CHANGELIST = "admin:runner_agent_changelist"


def make_runs(agent, statuses, start=None):
    start = start or timezone.now() - timedelta(days=1)
    for offset, status in enumerate(statuses):
        moment = start + timedelta(minutes=offset)
        started = None if status in ("skipped", "queued") else moment  # as the services record them
        CycleRunFactory(agent=agent, status=status, queued_at=moment, started_at=started)
        if started:
            agent.last_run = started  # a claim sets both
    agent.save(update_fields=["last_run"])


def test_changelist_shows_badge_next_run_last_outcome_and_success_rate(admin_client):
    agent = AgentFactory(
        slug="alpha", state="running", next_run=timezone.now() + timedelta(minutes=12, seconds=30)
    )
    # 25 finished runs: the oldest 5 failed, then 19 succeeded, the latest failed; only the
    # latest 20 count, so the rate is 19/20. Skipped slots after them are neither runs nor outcomes.
    make_runs(agent, ["failed"] * 5 + ["succeeded"] * 19 + ["failed"] + ["skipped"] * 3)
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert '<span class="runner-badge runner-state-running">Running</span>' in html
    assert "in 12\xa0minutes" in html
    assert "95% (19/20)" in html
    assert '<span class="runner-badge runner-run-failed">Failed</span>' in html  # the last that ran
    assert "runner-run-skipped" not in html


def test_success_rate_with_fewer_runs_than_the_window(admin_client):
    agent = AgentFactory(slug="beta")
    make_runs(agent, ["succeeded", "failed", "succeeded", "timed_out"])
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "50% (2/4)" in html
    assert "runner-run-timed_out" in html


def test_changelist_query_count_does_not_grow_with_agents(admin_client):
    def queries_for_page():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse(CHANGELIST)).status_code == 200
        return len(captured)

    for n in range(2):
        make_runs(AgentFactory(slug=f"few-{n}"), ["succeeded", "failed"])
    few = queries_for_page()
    for n in range(8):
        make_runs(AgentFactory(slug=f"many-{n}"), ["succeeded", "failed", "succeeded"])
    assert queries_for_page() == few
