"""The audit trail in the admin: read-only for everyone, readable changes, filters."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape, strip_tags

from runner.models import AuditEvent
from tests.factories import AgentFactory, AuditEventFactory, UserFactory

pytestmark = pytest.mark.django_db


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


def test_audit_list_and_page_show_times_with_seconds_and_time_zone(admin_client, sorted_by_header):
    """Five events in one minute must not look simultaneous; the column still sorts."""
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    events = [
        AuditEventFactory(action=action, created_at=moment + timedelta(seconds=3 * i))
        for i, action in enumerate(["start", "run_once", "pause", "resume", "stop"])
    ]
    url = reverse("admin:runner_auditevent_changelist")
    text = strip_tags(admin_client.get(url).content.decode())
    for second in (7, 10, 13, 16, 19):
        assert f"2026-03-04 05:06:{second:02d} UTC" in text
    assert sorted_by_header(url, "Created at") == [event.pk for event in events]
    page = admin_client.get(reverse("admin:runner_auditevent_change", args=[events[0].pk]))
    assert "2026-03-04 05:06:07 UTC" in strip_tags(page.content.decode())


def test_audit_list_cuts_long_texts_and_keeps_them_whole_in_the_title(admin_client):
    reason = "Weekly cadence while the election markets are thin; " * 4
    refusal = "Agent is not running (state: paused); pause applies to a running agent. " * 2
    before = {"kelly_fraction": 0.25, "max_markets": 20, "min_edge": 0.05}
    event = AuditEventFactory(
        reason=reason,
        outcome="refused",
        refusal_reason=refusal,
        changes={"parameters": {"before": before, "after": {**before, "max_markets": 40}}},
    )
    html = admin_client.get(reverse("admin:runner_auditevent_changelist")).content.decode()
    assert f'title="{escape(reason)}">{escape(reason[:99])}…<' in html
    assert f'title="{escape(refusal)}">{escape(refusal[:99])}…<' in html
    full_before = '{"kelly_fraction": 0.25, "max_markets": 20, "min_edge": 0.05}'
    assert escape(f"parameters: {full_before} → ") in html  # in the title
    assert f'<span class="runner-before">{escape(full_before[:39])}…</span>' in html
    page = admin_client.get(reverse("admin:runner_auditevent_change", args=[event.pk]))
    assert escape(reason.strip()) in page.content.decode()
