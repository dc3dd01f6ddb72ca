import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner import execution, logs, services
from runner.actors import Actor
from tests.factories import AgentFactory

BASE_DIR = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_configured_log_format_writes_one_line_per_event_with_context(log_format):
    """The real settings, in a fresh process: LOG_FORMAT selects the formatter of every line."""
    code = (
        "import logging; from runner import logs\n"
        "with logs.bind(agent='a1', run_id=42, request_id='r-9'):\n"
        "    logging.getLogger('runner.test').warning('multi\\nline event')"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, "LOG_FORMAT": log_format},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "runner.test" in line]
    assert len(lines) == 1
    if log_format == "json":
        entry = json.loads(lines[0])
        assert entry["message"] == "multi\nline event"
        assert (entry["agent"], entry["run_id"], entry["request_id"]) == ("a1", 42, "r-9")
        assert entry["level"] == "WARNING"
    else:
        assert "[agent=a1 run=42 request=r-9] multi\\nline event" in lines[0]
    assert not any(line.startswith("line event") for line in result.stderr.splitlines())
