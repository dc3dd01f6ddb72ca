import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from runner import monitoring
from runner.models import WorkerHeartbeat
from tests.factories import AgentFactory

BASE_DIR = Path(__file__).resolve().parents[2]


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
    WorkerHeartbeat.objects.create(worker="h:1", seen_at=timezone.now() - timedelta(seconds=61))
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


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_database_unreachable_gives_503_without_details():
    """A real process whose database does not answer (a closed port on 127.0.0.1)."""
    port = _free_port()
    code = (
        "from django.test import Client; r = Client().get('/healthz'); "
        "print(r.status_code); print(r.content.decode())"
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://nobody:pw-not-to-leak@127.0.0.1:{port}/nodb",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "CRITICAL",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    status, body = result.stdout.strip().split("\n", 1)
    assert status == "503", result.stderr
    report = json.loads(body)
    assert report["checks"]["database"] == {"ok": False, "reason": "database unreachable"}
    assert "pw-not-to-leak" not in body and str(port) not in body
