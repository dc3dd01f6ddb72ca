"""Cycle runs in the admin: read-only, detail pages, filters, constant query counts."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from runner.models import CycleRun
from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db


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


def test_run_title_and_breadcrumb_name_the_run_its_agent_and_status(admin_client):
    run = CycleRunFactory(agent=AgentFactory(slug="gamma"), status="timed_out")
    html = admin_client.get(reverse("admin:runner_cyclerun_change", args=[run.pk])).content.decode()
    name = f"Run {run.pk} of gamma (timed out)"
    assert f"<title>{name} | View cycle run" in html
    breadcrumbs = html.split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0]
    assert name in breadcrumbs
    assert f"#{run.pk} timed_out" not in html


def test_a_run_names_its_agent_only_when_loaded_so_lists_pay_no_query_per_row(
    django_assert_num_queries,
):
    run = CycleRunFactory(agent=AgentFactory(slug="gamma"), status="succeeded")
    with_agent = CycleRun.objects.select_related("agent").get(pk=run.pk)
    without_agent = CycleRun.objects.get(pk=run.pk)
    with django_assert_num_queries(0):
        assert str(with_agent) == f"Run {run.pk} of gamma (succeeded)"
        assert str(without_agent) == f"Run {run.pk} (succeeded)"


def test_run_list_shows_times_with_seconds_and_time_zone_and_sorts_by_them(
    admin_client, sorted_by_header
):
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    first_queued = CycleRunFactory(queued_at=moment, started_at=moment + timedelta(seconds=9))
    first_started = CycleRunFactory(
        queued_at=moment + timedelta(seconds=5), started_at=moment + timedelta(seconds=6)
    )
    url = reverse("admin:runner_cyclerun_changelist")
    text = strip_tags(admin_client.get(url).content.decode())
    for second in (7, 16, 12, 13):  # queued and started of both runs
        assert f"2026-03-04 05:06:{second:02d} UTC" in text
    assert sorted_by_header(url, "Queued at") == [first_queued.pk, first_started.pk]
    assert sorted_by_header(url, "Started at") == [first_started.pk, first_queued.pk]
