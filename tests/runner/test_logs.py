"""tests/runner/test_logs.py"""

import io
import json
import logging

import pytest

from runner import execution, logs, services
from runner.actors import Actor
from tests.factories import AgentFactory


@pytest.fixture
def json_lines():
    """Capture root logging as the production JSON handler writes it; yields a reader."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.mark.django_db
def test_every_line_of_a_cycle_carries_agent_and_run_id(json_lines):
    agent = AgentFactory(slug="logged", kind="test-fail")
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="t:1")
    with logs.bind(request_id="req-7"):
        execution.execute_claim(claim)
    cycle_lines = [line for line in json_lines() if line["logger"].startswith("runner.cycle")]
    assert {line["message"] for line in cycle_lines} >= {
        f"[run {queued.pk}] about to fail",
        f"[run {queued.pk}] cycle failed: BoomError: the agent exploded on purpose",
    }
    for line in cycle_lines:
        assert line["agent"] == "logged"
        assert line["run_id"] == queued.pk
        assert line["request_id"] == "req-7"
        assert line["level"] in {"INFO", "ERROR", "WARNING"} and "time" in line
    # Outside the cycle the context is gone again.
    logging.getLogger("after").warning("later")
    assert json_lines()[-1]["agent"] is None and json_lines()[-1]["run_id"] is None


@pytest.mark.django_db
def test_request_id_is_honoured_returned_and_logged(client, json_lines):
    response = client.get("/livez", HTTP_X_REQUEST_ID="abc-123.x")
    assert response["X-Request-ID"] == "abc-123.x"
    access = [line for line in json_lines() if line["logger"] == "runner.request"]
    assert access[-1]["request_id"] == "abc-123.x"
    assert access[-1]["path"] == "/livez" and access[-1]["status"] == 200


@pytest.mark.django_db
def test_unsafe_or_missing_request_ids_are_replaced(client):
    generated = client.get("/livez")["X-Request-ID"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    injected = client.get("/livez", HTTP_X_REQUEST_ID="a\nFAKE LOG LINE")["X-Request-ID"]
    assert "\n" not in injected and "FAKE" not in injected
    too_long = client.get("/livez", HTTP_X_REQUEST_ID="x" * 65)["X-Request-ID"]
    assert too_long != "x" * 65
