"""The audit trail in the admin: read-only for everyone, readable changes, filters."""

import pytest
from django.urls import reverse

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
