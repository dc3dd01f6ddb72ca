"""Pause with an optional `until` over HTTP: the runner API, the seed's endpoint and forms."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from runner import services
from runner.models import Agent, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(agent):
    Agent.objects.filter(pk=agent.pk).update(state="running", next_run=timezone.now())
    return agent


def test_pause_until_shows_in_the_agent_and_its_status(api, running):
    answer = api.post(
        f"/api/agents/{running.slug}/pause/", {"reason": "night", "until": "8h"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    until = parse_datetime(answer.json()["paused_until"])
    assert timedelta(hours=7, minutes=59) < until - timezone.now() <= timedelta(hours=8)
    status = api.get(f"/api/agents/{running.slug}/status/").json()
    assert status["state"] == "paused" and parse_datetime(status["paused_until"]) == until
    services.resume_expired_pauses(now=until)
    status = api.get(f"/api/agents/{running.slug}/status/").json()
    assert status["state"] == "running" and status["paused_until"] is None


def test_pause_without_until_has_no_end(api, running):
    answer = api.post(f"/api/agents/{running.slug}/pause/", format="json")
    assert answer.status_code == 200 and answer.json()["paused_until"] is None


@pytest.mark.parametrize("bad", ["tomorrow", "2000-01-01T00:00Z", 7200, True, {"h": 2}])
def test_a_bad_until_is_a_400_naming_the_field_and_is_audited_once(api, running, bad):
    answer = api.post(f"/api/agents/{running.slug}/pause/", {"until": bad}, format="json")
    assert answer.status_code == 400
    assert list(answer.json()) == ["until"] and "until must" in answer.json()["until"][0]
    assert Agent.objects.get(pk=running.pk).state == "running"
    [event] = AuditEvent.objects.filter(agent=running)
    assert (event.action, event.outcome) == ("pause", "refused")


def test_a_form_may_carry_until(api, running):
    answer = api.post(f"/api/agents/{running.slug}/pause/", {"until": "30m"})  # form-encoded
    assert answer.status_code == 200 and answer.json()["paused_until"]


def test_the_seed_pause_accepts_until_and_keeps_its_message_without_it(api, default_agent):
    api.post("/api/agent/start")
    answer = api.post("/api/agent/pause", {"until": "2h"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["status"] == "paused"
    assert answer.json()["message"].startswith("Agent paused until ")
    assert api.post("/api/agent/resume").status_code == 200
    assert api.post("/api/agent/pause").json() == {"status": "paused", "message": "Agent paused"}
    assert api.post("/api/agent/resume").status_code == 200
    answer = api.post("/api/agent/pause", {"until": "soon"}, format="json")
    assert answer.status_code == 400 and answer.json()["field"] == "until"
