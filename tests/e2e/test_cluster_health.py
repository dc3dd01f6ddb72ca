"""A real qcluster makes /healthz green through its worker heartbeat; without it /healthz is 503."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from runner.models import WorkerHeartbeat

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def database_url():
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_qcluster_heartbeat_drives_healthz(client, settings):
    assert client.get("/healthz").status_code == 503  # no cluster yet
    env = {**os.environ, "DATABASE_URL": database_url(), "Q_WORKERS": "1"}
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not WorkerHeartbeat.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        beat = WorkerHeartbeat.objects.get()
        assert beat.cluster == "agent-runner" and ":" in beat.worker
        response = client.get("/healthz")
        assert response.status_code == 200, response.json()
    finally:
        cluster.send_signal(signal.SIGTERM)  # qcluster stops its workers gracefully
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait(timeout=10)
    settings.RUNNER_HEARTBEAT_MAX_AGE_SECONDS = 1
    time.sleep(1.2)
    assert client.get("/healthz").status_code == 503
