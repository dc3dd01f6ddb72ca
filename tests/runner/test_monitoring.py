"""tests/runner/test_monitoring.py"""

from datetime import timedelta

import pytest
from django.utils import timezone

from runner import monitoring
from tests.factories import AgentFactory, WorkerHeartbeatFactory


@pytest.fixture
def fresh_heartbeat(db):
    monitoring.record_heartbeat(worker="host-a:101")


@pytest.mark.django_db
def test_healthy_when_database_heartbeat_and_schedule_are_fine(client, fresh_heartbeat):
    AgentFactory(state="running", next_run=timezone.now() + timedelta(minutes=5))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["cluster"]["ok"] is True
    assert body["checks"]["schedule"] == {"ok": True, "overdue_agents": 0}


@pytest.mark.django_db
def test_unhealthy_without_any_cluster_heartbeat(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    cluster = response.json()["checks"]["cluster"]
    assert cluster["ok"] is False
    assert "no cluster heartbeat recorded yet" in cluster["reason"]


@pytest.mark.django_db
def test_unhealthy_when_the_heartbeat_is_stale(client, settings):
    settings.RUNNER_HEARTBEAT_MAX_AGE_SECONDS = 60
    WorkerHeartbeatFactory(worker="h:1", seen_at=timezone.now() - timedelta(seconds=61))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "last 60 s" in response.json()["checks"]["cluster"]["reason"]
    monitoring.record_heartbeat(worker="h:2")
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_overdue_agent_beyond_grace_is_unhealthy_and_not_named(client, settings, fresh_heartbeat):
    settings.RUNNER_OVERDUE_GRACE_SECONDS = 300
    now = timezone.now()
    secret_slug = "secret-strategy-x"
    AgentFactory(slug=secret_slug, state="running", next_run=now - timedelta(seconds=301))
    # late but within grace, and stopped/paused agents with old next runs, are not overdue
    AgentFactory(state="running", next_run=now - timedelta(seconds=200))
    AgentFactory(state="paused", next_run=None, paused_next_run=now - timedelta(days=1))
    response = client.get("/healthz")
    assert response.status_code == 503
    schedule = response.json()["checks"]["schedule"]
    assert schedule["ok"] is False and schedule["overdue_agents"] == 1
    assert secret_slug not in response.content.decode()


@pytest.mark.django_db
def test_healthz_needs_no_login_and_only_answers_get(client, fresh_heartbeat):
    assert client.get("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
    assert client.get("/livez").json() == {"status": "ok"}
