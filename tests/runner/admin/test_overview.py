"""The overview of every agent: attention first, the outcome strip, in flight, the breaker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from runner import attention
from runner.admin.overview import overview_rows
from runner.models import Agent, AlertKind
from tests.factories import AgentFactory, AlertFactory, CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def only_this_tests_agents(db):
    Agent.objects.all().delete()  # the migration's default agent


def runs(agent, statuses, start=None):
    """Finished runs of `agent`, one a minute, in this order (oldest first)."""
    start = start or timezone.now() - timedelta(hours=2)
    return [
        CycleRunFactory(agent=agent, status=status, queued_at=start + timedelta(minutes=i))
        for i, status in enumerate(statuses)
    ]


def test_agents_that_need_attention_come_first_most_urgent_first(settings):
    settings.RUNNER_OVERDUE_GRACE_SECONDS = 60
    now = timezone.now()
    AgentFactory(slug="a-healthy", state="running", next_run=now + timedelta(minutes=5))
    AgentFactory(slug="b-late", state="running", next_run=now - timedelta(minutes=10))
    abandoned = AgentFactory(slug="c-abandoned", state="running", next_run=now)
    AlertFactory(kind=AlertKind.RUN_ABANDONED, agent=abandoned)
    AgentFactory(slug="d-stopped")
    AgentFactory(slug="z-tripped", state="error")

    rows = overview_rows(now)

    assert [row["agent"].slug for row in rows] == [
        "z-tripped",
        "b-late",
        "c-abandoned",
        "a-healthy",
        "d-stopped",
    ]
    assert [[c.code for c in row["concerns"]] for row in rows] == [
        ["error"],
        ["overdue"],
        ["alert"],
        [],
        [],
    ]


def test_the_strip_shows_the_last_20_finished_runs_oldest_first_with_the_success_rate():
    agent = AgentFactory(max_consecutive_failures=3, consecutive_failures=2)
    old = runs(agent, ["failed"] * 5)  # pushed out of the strip by the 20 newer ones
    kept = runs(
        agent,
        ["succeeded"] * 15 + ["failed", "timed_out", "cancelled", "failed"] + ["abandoned"],
        start=timezone.now() - timedelta(hours=1),
    )
    CycleRunFactory(agent=agent, status="skipped")  # not finished: not in the strip
    CycleRunFactory(agent=agent, status="running", finished_at=None)

    (row,) = overview_rows()

    strip = str(row["strip"])
    assert strip.count("<a ") == 20
    assert all(f"run #{run.pk}:" not in strip for run in old)
    positions = [strip.index(f"run #{run.pk}:") for run in kept]
    assert positions == sorted(positions)  # oldest to newest
    assert row["success"] == "75% (15/20)"
    assert "2 of 3" in str(row["failures"]) and "runner-breaker-near" in str(row["failures"])
    assert "run #" in str(row["in_flight"]) and "data-elapsed-since" in str(row["in_flight"])


def test_the_page_costs_the_same_queries_for_5_agents_or_50(admin_client):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse("runner-overview")).status_code == 200
        return len(captured)

    for n in range(5):
        runs(AgentFactory(slug=f"few-{n}"), ["succeeded", "failed"])
    few = queries()
    for n in range(45):
        runs(AgentFactory(slug=f"many-{n}"), ["succeeded", "failed", "succeeded"])
    assert queries() == few


def test_the_page_lists_every_agent_and_is_live(admin_client):
    AgentFactory(slug="calm")
    AgentFactory(slug="broken", state="error")
    html = admin_client.get(reverse("runner-overview")).content.decode()
    assert html.index('data-agent="broken"') < html.index('data-agent="calm"')
    assert "1 needs attention" in html and 'id="runner-overview" data-live-region' in html
    assert 'data-scope="overview"' in html
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("runner-overview") in index
    agents = admin_client.get(reverse("admin:runner_agent_changelist")).content.decode()
    assert reverse("runner-overview") in agents


def test_viewing_needs_the_view_permission(client):
    url = reverse("runner-overview")
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(UserFactory(username="staff-only"))
    assert client.get(url).status_code == 403
    client.force_login(UserFactory(username="viewer", perms=["runner.view_agent"]))
    assert client.get(url).status_code == 200


def test_concerns_is_the_one_rule():
    running = AgentFactory.build(state="running")
    assert attention.concerns(running, overdue=False) == []
    assert attention.concerns(running, overdue=True, open_alert_kinds={"run_abandoned"}) == [
        attention.OVERDUE,
        attention.ALERTS[AlertKind.RUN_ABANDONED],
    ]
    # The error alert and the overdue alert say what `error` and `overdue` already say.
    tripped = AgentFactory.build(state="error")
    assert attention.concerns(tripped, overdue=False, open_alert_kinds={"agent_error"}) == [
        attention.TRIPPED
    ]
    assert attention.urgency([]) > attention.urgency([attention.ALERTS["run_abandoned"]])
