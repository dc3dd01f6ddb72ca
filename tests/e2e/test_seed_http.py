"""The seed's endpoints against a real gunicorn: its curl sequence and the synchronous run-once."""

import json
import re
import shlex
import subprocess
import time

import pytest

from tests.support.http_server import running_server

# The seed's own curl sequence, as its summary shows it (PHASE2_4_SUMMARY.md, "Using the API").
SEED_CURL_SEQUENCE = """\
curl http://localhost:8000/api/agent/status
curl -X POST http://localhost:8000/api/agent/start
curl -X PUT http://localhost:8000/api/agent/interval \\
  -H "Content-Type: application/json" \\
  -d '{"interval_minutes": 30}'
curl -X POST http://localhost:8000/api/agent/run-once
curl -X POST http://localhost:8000/api/agent/pause
curl -X POST http://localhost:8000/api/agent/resume
curl -X POST http://localhost:8000/api/agent/stop
"""


STATUS_FIELDS = {
    "state", "running", "last_run", "next_run", "interval_minutes", "run_count", "error_count",
    "last_error", "total_forecasts", "total_trades",
}  # fmt: skip


SERVER_SETUP = """
from django.conf import settings
from runner.models import Agent
Agent.objects.filter(slug=settings.RUNNER_DEFAULT_AGENT).update(kind="test-ok")
"""


RUN_ONCE_WAIT_SECONDS = 5


@pytest.fixture(scope="module")
def server():
    env = {
        "RUNNER_API_RUN_ONCE_GRACE_SECONDS": "0.2",
        "RUNNER_API_RUN_ONCE_WAIT_SECONDS": str(RUN_ONCE_WAIT_SECONDS),
    }
    with running_server(env=env, setup_code=SERVER_SETUP, username="scripts") as running:
        yield running


@pytest.fixture
def http(server):
    with server.client() as client:
        yield client


def set_default_agent(http, **values):
    response = http.patch("/api/agents/default/", json=values)
    assert response.status_code == 200, response.text


def curl_commands(sequence, base_url, token):
    """Each curl command of the sequence, pointed at base_url, with the token header added."""
    joined = sequence.replace("\\\n", " ")
    for line in joined.splitlines():
        args = shlex.split(line.replace("http://localhost:8000", base_url))
        yield [*args, "-s", "-H", f"Authorization: Token {token}", "--max-time", "30"]


@pytest.mark.slow
def test_the_seed_curl_sequence_against_a_real_server(server, http):
    set_default_agent(http, kind="test-ok", parameters={}, interval_minutes=60)
    first_event = http.get("/api/events/").json()["results"][0]["id"]
    answers = []
    for command in curl_commands(SEED_CURL_SEQUENCE, server.base_url, server.token):
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        answers.append(json.loads(done.stdout))
    status, started, interval, run_once, paused, resumed, stopped = answers
    assert set(status) == STATUS_FIELDS and status["state"] == "stopped"
    assert started["status"] == "started" and started["message"] and started["next_run"]
    assert interval == {
        "status": "updated", "interval_minutes": 30, "message": "Interval updated to 30 minutes",
    }  # fmt: skip
    assert run_once["success"] is True and run_once["error"] is None
    assert re.match(r"\d{4}-\d\d-\d\dT", run_once["completed_at"])
    assert paused == {"status": "paused", "message": "Agent paused"}
    assert resumed == {"status": "resumed", "message": "Agent resumed"}
    assert stopped == {"status": "stopped", "message": "Agent stopped successfully"}
    events = [
        e
        for e in http.get("/api/events/", params={"source": "api"}).json()["results"]
        if e["id"] > first_event
    ][::-1]
    assert [e["action"] for e in events] == [
        "start", "set_interval", "run_once", "pause", "resume", "stop",
    ]  # fmt: skip
    assert {e["actor"] for e in events} == {"scripts"}
    assert all(e["client_ip"] == "127.0.0.1" and e["request_id"] for e in events)


@pytest.mark.slow
def test_run_once_reports_a_failed_cycle(http):
    set_default_agent(http, kind="test-fail", parameters={})
    response = http.post("/api/agent/run-once")
    body = response.json()
    assert response.status_code == 200, body
    assert body["success"] is False and body["status"] == "failed"
    assert body["error"] == "BoomError: the agent exploded on purpose"
    assert http.get(f"/api/runs/{body['run_id']}/").json()["trigger"] == "manual"


@pytest.mark.slow
def test_run_once_answers_honestly_when_the_wait_ends_first(http):
    seconds = RUN_ONCE_WAIT_SECONDS + 2
    set_default_agent(http, kind="test-slow", parameters={"seconds": seconds, "step": 0.05})
    response = http.post("/api/agent/run-once")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["success"] is False and body["completed_at"] is None
    assert f"/api/runs/{body['run_id']}/" in body["error"]
    # The cycle keeps going in the web process and records its own end.
    deadline = time.monotonic() + seconds + 20
    while time.monotonic() < deadline:
        run = http.get(f"/api/runs/{body['run_id']}/").json()
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert run["status"] == "succeeded" and run["worker"]
