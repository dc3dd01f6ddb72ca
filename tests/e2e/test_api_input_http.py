"""Bodies at the HTTP server's edge, against a real gunicorn: the default size limit, JSON nested
100,000 deep, a lone surrogate, and `curl -d` form bodies. Each is JSON and audited, never a 500."""

import subprocess

import httpx
import pytest

from tests.support.http_server import running_server

SETUP = """
from runner.models import Agent
Agent.objects.get_or_create(slug="edge", defaults={"name": "Edge", "kind": "test-ok"})
"""
DJANGO_DEFAULT_LIMIT = 2_621_440  # DATA_UPLOAD_MAX_MEMORY_SIZE, left at Django's default


@pytest.fixture(scope="module")
def server():
    with running_server(setup_code=SETUP, username="edge-user") as running:
        yield running


@pytest.fixture
def http(server):
    with server.client() as client:
        yield client


def newest_event(http):
    return http.get("/api/events/", params={"agent": "edge"}).json()["results"][0]


def assert_no_server_error(server):
    assert "Traceback" not in server.log_path.read_text()


@pytest.mark.slow
def test_a_body_over_the_default_limit_is_413_json(server, http):
    before = max((e["id"] for e in http.get("/api/events/").json()["results"]), default=0)
    body = b'{"reason": "' + b"x" * (DJANGO_DEFAULT_LIMIT + 10) + b'"}'
    # On a connection of its own: gunicorn answers before reading the body, then closes the
    # connection rather than drain more than 64 KiB of it (whatever the answer's headers say).
    response = httpx.post(
        f"{server.base_url}/api/agents/edge/start/",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Token {server.token}"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert str(DJANGO_DEFAULT_LIMIT) in response.json()["detail"]
    event = newest_event(http)
    assert event["id"] > before and event["outcome"] == "refused" and event["action"] == "start"
    assert http.get("/api/agents/edge/").json()["state"] == "stopped"
    assert_no_server_error(server)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "text", "field"),
    [
        ("POST", "/api/agents/edge/stop/", '{"reason": ' + "[" * 100_000 + "]" * 100_000 + "}", "reason"),
        ("PATCH", "/api/agents/edge/", '{"parameters": ' + "{\"a\": " * 100_000 + "1" + "}" * 100_001, "parameters"),
        ("POST", "/api/agents/edge/pause/", r'{"reason": "\ud800"}', "reason"),
        ("PATCH", "/api/agents/edge/", r'{"name": "x\udfff"}', "name"),
    ],
)  # fmt: skip
def test_deep_json_and_lone_surrogates_are_400_naming_the_field(
    server, http, method, path, text, field
):
    response = http.request(
        method, path, content=text.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text[:300]
    assert list(response.json()) == [field]
    event = newest_event(http)
    assert event["outcome"] == "refused" and event["refusal_reason"]
    agent = http.get("/api/agents/edge/").json()
    assert (agent["name"], agent["state"]) == ("Edge", "stopped")
    assert_no_server_error(server)


@pytest.mark.slow
def test_curl_form_bodies_reach_the_control_endpoints(server):
    def curl(*args):
        done = subprocess.run(
            ["curl", "-s", "-H", f"Authorization: Token {server.token}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    base = server.base_url
    assert '"state":"running"' in curl(
        "-d", "reason=opening bell", f"{base}/api/agents/edge/start/"
    )
    assert '"interval_minutes":30' in curl(
        "-X", "PUT", "-d", "interval_minutes=30", f"{base}/api/agents/edge/interval/"
    )
    assert '"state":"stopped"' in curl("-F", "reason=closing", f"{base}/api/agents/edge/stop/")
    with server.client() as http:
        events = http.get("/api/events/", params={"agent": "edge", "outcome": "applied"}).json()
    reasons = [(e["action"], e["reason"]) for e in events["results"][:3]]
    assert reasons == [("stop", "closing"), ("set_interval", ""), ("start", "opening bell")]
    assert_no_server_error(server)
