"""Agent changelist and bulk actions; read-only runs and audit events; the estimating paginator."""

from datetime import UTC, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from runner.admin.pagination import EstimatedCountPaginator
from runner.models import AuditEvent, CycleRun
from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:runner_agent_changelist"


def messages_of(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def make_runs(agent, statuses, start=None):
    start = start or timezone.now() - timedelta(days=1)
    for offset, status in enumerate(statuses):
        moment = start + timedelta(minutes=offset)
        started = None if status in ("skipped", "queued") else moment  # as the services record them
        CycleRunFactory(agent=agent, status=status, queued_at=moment, started_at=started)
        if started:
            agent.last_run = started  # a claim sets both
    agent.save(update_fields=["last_run"])


# --- agent changelist -----------------------------------------------------------------------------


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


def test_bulk_start_reports_applied_and_refused_per_agent(client):
    user = UserFactory(perms=["runner.view_agent", "runner.control_agent"])
    client.force_login(user)
    stopped = AgentFactory(slug="a-stopped", state="stopped")
    running = AgentFactory(slug="b-running", state="running", next_run=timezone.now())
    errored = AgentFactory(slug="c-error", state="error")
    response = client.post(
        reverse(CHANGELIST),
        {"action": "start_agents", "_selected_action": [stopped.pk, running.pk, errored.pk]},
        follow=True,
    )
    assert messages_of(response) == [
        ("success", "Start: applied to 2 agent(s): a-stopped, c-error."),
        ("warning", "Start: refused for 1 agent(s): b-running (Agent is already running)."),
    ]
    for agent in (stopped, running, errored):
        agent.refresh_from_db()
        assert agent.state == "running"
    outcomes = dict(AuditEvent.objects.values_list("agent_slug", "outcome"))
    assert outcomes == {"a-stopped": "applied", "b-running": "refused", "c-error": "applied"}
    assert set(AuditEvent.objects.values_list("source", flat=True)) == {"admin"}


@pytest.mark.parametrize(
    ("action", "state", "after"),
    [
        ("stop_agents", "running", "stopped"),
        ("pause_agents", "running", "paused"),
        ("resume_agents", "paused", "running"),
    ],
)
def test_each_bulk_action_calls_the_service_per_agent(admin_client, action, state, after):
    agents = [AgentFactory(state=state, next_run=timezone.now()) for _ in range(3)]
    admin_client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [a.pk for a in agents]}
    )
    for agent in agents:
        agent.refresh_from_db()
        assert agent.state == after
    assert AuditEvent.objects.filter(outcome="applied").count() == 3


def test_bulk_actions_need_the_control_permission_and_a_forged_one_is_audited(client):
    user = UserFactory(perms=["runner.view_agent", "runner.change_agent"])
    client.force_login(user)
    agent = AgentFactory(state="stopped")
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "start_agents" not in page
    response = client.post(
        reverse(CHANGELIST), {"action": "start_agents", "_selected_action": [agent.pk, "x"]}
    )
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.state == "stopped"
    event = AuditEvent.objects.get()
    assert (event.agent, event.action, event.outcome) == (agent, "start", "refused")
    assert "runner.control_agent" in event.refusal_reason and event.actor == user


# --- cycle runs: read-only --------------------------------------------------------------------------


def test_nobody_can_add_change_or_delete_a_run(admin_client):
    run = CycleRunFactory(status="failed", error_message="original")
    assert admin_client.get(reverse("admin:runner_cyclerun_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:runner_cyclerun_change", args=[run.pk]),
        {"status": "succeeded", "error_message": "rewritten"},
    )
    assert response.status_code == 403
    delete_url = reverse("admin:runner_cyclerun_delete", args=[run.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = admin_client.post(
        reverse("admin:runner_cyclerun_changelist"),
        {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"},
    )
    run.refresh_from_db()
    assert (run.status, run.error_message) == ("failed", "original")


def test_run_detail_shows_summary_log_lines_and_traceback(admin_client):
    run = CycleRunFactory(
        status="failed",
        summary={"markets_loaded": 12},
        log_lines=["12:00:00.000 INFO cycle started", "12:00:01.000 ERROR cycle failed"],
        error_type="BoomError",
        error_message="the agent exploded",
        traceback='Traceback (most recent call last):\n  File "x.py", line 1\nBoomError: <boom>',
    )
    html = admin_client.get(reverse("admin:runner_cyclerun_change", args=[run.pk])).content.decode()
    assert "&quot;markets_loaded&quot;: 12" in html
    assert "12:00:00.000 INFO cycle started\n12:00:01.000 ERROR cycle failed" in html
    assert "BoomError: &lt;boom&gt;" in html  # escaped, not injected
    assert 'name="_save"' not in html  # no save button: read-only


def test_run_changelist_filters_and_searches(admin_client):
    a, b = AgentFactory(slug="a"), AgentFactory(slug="b")
    CycleRunFactory(agent=a, status="failed", trigger="manual", error_message="gamma timed out")
    CycleRunFactory(agent=b, status="succeeded", trigger="schedule")
    url = reverse("admin:runner_cyclerun_changelist")

    def ids(query):
        response = admin_client.get(url, query)
        assert response.status_code == 200
        return {run.agent.slug for run in response.context["cl"].result_list}

    assert ids({}) == {"a", "b"}
    assert ids({"status__exact": "failed"}) == {"a"}
    assert ids({"trigger__exact": "schedule"}) == {"b"}
    assert ids({"agent__id__exact": b.pk}) == {"b"}
    assert ids({"q": "timed out"}) == {"a"}
    year = timezone.now().year
    assert ids({"started_at__year": year}) == {"a", "b"}


def test_run_changelist_query_count_does_not_grow_with_rows(admin_client):
    url = reverse("admin:runner_cyclerun_changelist")
    user = UserFactory(username="requester")
    CycleRunFactory.create_batch(3, requested_by=user)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return [q["sql"] for q in captured]

    few = queries()
    for _ in range(3):
        CycleRunFactory.create_batch(20, agent=AgentFactory(), requested_by=user)
    many = queries()
    assert len(many) == len(few)
    selects = [sql for sql in many if 'FROM "runner_cyclerun"' in sql]
    assert not any('"log_lines"' in sql for sql in selects)  # heavy columns are not loaded


def test_run_detail_links_records_that_point_at_it(admin_client):
    """Discovered via _meta.related_objects: shown here on an event, whose runs point at it."""
    agent = AgentFactory()
    event = AuditEventFactory(agent=agent, action="run_once")
    CycleRunFactory(agent=agent, control_event=event)
    html = admin_client.get(
        reverse("admin:runner_auditevent_change", args=[event.pk])
    ).content.decode()
    link = reverse("admin:runner_cyclerun_changelist") + f"?control_event__id__exact={event.pk}"
    assert f'<a href="{link}">1</a>' in html
    response = admin_client.get(link)
    assert [run.control_event_id for run in response.context["cl"].result_list] == [event.pk]


def test_run_detail_lists_related_models_of_other_apps():
    """Every model with a ForeignKey to CycleRun shows up (the agents app's records, when present)."""
    from django.apps import apps

    from runner.admin.base import related_record_links

    pointing = {
        model
        for model in apps.get_models()
        for field in model._meta.fields
        if field.is_relation and field.related_model is CycleRun
    }
    run = CycleRunFactory()

    class Request:
        user = UserFactory(is_superuser=True)

    from django.contrib import admin

    labels = {link["label"] for link in related_record_links(Request(), run, admin.site)}
    expected = {f"{m._meta.app_label}: {m._meta.verbose_name_plural}" for m in pointing}
    assert labels == expected


# --- audit events: read-only ------------------------------------------------------------------------


def test_nobody_can_add_change_or_delete_an_audit_event(admin_client):
    event = AuditEventFactory(reason="original")
    assert admin_client.get(reverse("admin:runner_auditevent_add")).status_code == 403
    change = reverse("admin:runner_auditevent_change", args=[event.pk])
    assert admin_client.post(change, {"reason": "rewritten"}).status_code == 403
    delete = reverse("admin:runner_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.reason == "original"
    assert AuditEvent.objects.count() == 1


def test_audit_list_shows_changes_readably_and_filters(admin_client):
    agent = AgentFactory(slug="gamma")
    AuditEventFactory(
        agent=agent,
        action="set_interval",
        source="api",
        changes={"interval_minutes": {"before": 60, "after": 15}},
        state_before="running",
        state_after="running",
    )
    AuditEventFactory(
        agent=agent,
        action="pause",
        outcome="refused",
        source="admin",
        refusal_reason="Agent is not running",
    )
    url = reverse("admin:runner_auditevent_changelist")
    html = admin_client.get(url).content.decode()
    assert (
        '<code>interval_minutes</code>: <span class="runner-before">60</span> → '
        '<span class="runner-after">15</span>'
    ) in html
    assert "runner-outcome-refused" in html

    def actions(query):
        return [e.action for e in admin_client.get(url, query).context["cl"].result_list]

    assert actions({"outcome__exact": "refused"}) == ["pause"]
    assert actions({"source__exact": "api"}) == ["set_interval"]
    assert actions({"action__exact": "pause"}) == ["pause"]
    assert sorted(actions({"agent__id__exact": agent.pk})) == ["pause", "set_interval"]


def test_audit_actor_filter(admin_client):
    alice = UserFactory(username="alice")
    AuditEventFactory(actor=alice, actor_username="alice", action="stop")
    AuditEventFactory(action="start")
    url = reverse("admin:runner_auditevent_changelist")
    result = admin_client.get(url, {"actor__id__exact": alice.pk}).context["cl"].result_list
    assert [e.action for e in result] == ["stop"]


# --- the paginator ----------------------------------------------------------------------------------


def test_paginator_counts_exactly_below_the_cap():
    CycleRunFactory.create_batch(7)
    paginator = EstimatedCountPaginator(CycleRun.objects.order_by("-id"), 3)
    assert paginator.count == 7 and not paginator.estimated
    assert paginator.num_pages == 3


@pytest.mark.postgres
def test_paginator_estimates_above_the_cap_on_postgresql(monkeypatch):
    CycleRunFactory.create_batch(30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runner_cyclerun")
    monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 10)
    paginator = EstimatedCountPaginator(CycleRun.objects.order_by("-id"), 5)
    assert paginator.estimated
    assert paginator.count >= 11  # at least what was counted; the planner's figure beyond
    filtered = EstimatedCountPaginator(CycleRun.objects.filter(status="failed"), 5)
    assert filtered.count == 0 and not filtered.estimated


# --- date drill-down by probing ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_probed_dates_match_djangos_distinct_dates(kind):
    from datetime import datetime

    from runner.admin.pagination import ProbedDatesQuerySet

    moments = [
        datetime(2024, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2025, 1, 1, 13, 0, tzinfo=UTC),
        datetime(2025, 2, 28, 8, 0, tzinfo=UTC),
        datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
        datetime(2026, 7, 4, 12, 0, tzinfo=UTC),
    ]
    for status, moment in zip(["failed", "succeeded"] * 3, moments, strict=True):
        CycleRunFactory(status=status, queued_at=moment, started_at=moment)
    CycleRunFactory(status="skipped", started_at=None, finished_at=None)
    for queryset in (CycleRun.objects.all(), CycleRun.objects.filter(status="failed")):
        probed = ProbedDatesQuerySet.wrap(queryset).datetimes("started_at", kind)
        assert list(probed) == list(queryset.datetimes("started_at", kind))
    within = CycleRun.objects.filter(started_at__year=2025)
    assert list(ProbedDatesQuerySet.wrap(within).datetimes("started_at", kind)) == list(
        within.datetimes("started_at", kind)
    )
