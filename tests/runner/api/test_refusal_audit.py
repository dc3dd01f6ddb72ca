"""Every refused control or configuration request leaves exactly one `refused` audit event.

Whatever refused it: the HTTP edge (content type, body size, throttle, serializer, unknown agent,
permission) or the services (the state machine, a range check). Reads and anonymous requests
leave none.
"""

import pytest

from runner.models import Agent, AuditEvent
from tests.factories import UserFactory
from tests.runner.api.conftest import token_client

pytestmark = pytest.mark.django_db

CONTROL = [
    ("post", "/api/agents/alpha/start/", "start"),
    ("post", "/api/agents/alpha/stop/", "stop"),
    ("post", "/api/agents/alpha/run-once/", "run_once"),
    ("put", "/api/agents/alpha/interval/", "set_interval"),
    ("post", "/api/agent/start", "start"),
    ("post", "/api/agent/pause", "pause"),
    ("put", "/api/agent/interval", "set_interval"),
]
CONFIG = [
    ("post", "/api/agents/", "create"),
    ("put", "/api/agents/alpha/", "configure"),
    ("patch", "/api/agents/alpha/", "configure"),
]


@pytest.fixture
def scene(agent, default_agent):
    return {"alpha": agent, "default": default_agent}


def refused():
    return list(AuditEvent.objects.filter(outcome="refused").order_by("id"))


def assert_one_refusal(action, slug, *words):
    events = refused()
    assert len(events) == 1, [(e.action, e.refusal_reason) for e in events]
    [event] = events
    assert (event.action, event.agent_slug, event.source) == (action, slug, "api")
    assert event.actor_username == "operator" and event.request_id
    for word in words:
        assert word in event.refusal_reason, event.refusal_reason
    assert not AuditEvent.objects.filter(outcome="applied").exists()
    return event


def slug_of(path):
    return "alpha" if "/alpha/" in path else ("default" if "/agent/" in path else "")


@pytest.mark.parametrize(("method", "path", "action"), CONTROL + CONFIG)
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml"])
def test_unsupported_content_type_is_415_and_audited_once(
    api, scene, method, path, action, content_type
):
    response = getattr(api, method)(path, "reason=x", content_type=content_type)
    assert response.status_code == 415
    assert_one_refusal(action, slug_of(path), "Unsupported media type")


@pytest.mark.parametrize(("method", "path", "action"), CONTROL + CONFIG)
def test_oversized_body_is_audited_once(api, scene, settings, method, path, action):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = getattr(api, method)(path, {"reason": "r" * 200}, format="json")
    assert response.status_code == 413
    assert_one_refusal(action, slug_of(path), "100 bytes")


@pytest.mark.parametrize(("method", "path", "action"), CONTROL)
def test_throttled_control_request_is_429_and_audited_once(
    api, scene, settings, method, path, action
):
    settings.RUNNER_API_CONTROL_RATE = "1/min"
    assert api.get("/api/agents/alpha/").status_code == 200  # reads are not throttled
    assert api.post("/api/agents/alpha/pause/").status_code == 409  # uses the one request
    before = len(refused())
    response = getattr(api, method)(path, {"reason": "busy", "interval_minutes": 5}, format="json")
    assert response.status_code == 429
    events = refused()[before:]
    assert len(events) == 1
    assert (events[0].action, events[0].agent_slug) == (action, slug_of(path))
    assert "throttled" in events[0].refusal_reason and events[0].reason == "busy"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/agents/", {"slug": "bad slug!", "kind": "test-ok"}, "slug"),
        ("post", "/api/agents/", {"slug": "new", "kind": "test-ok", "colour": "red"}, "colour"),
        ("put", "/api/agents/alpha/", {"name": "n"}, "kind"),
        ("patch", "/api/agents/alpha/", {"state": "running"}, "state"),
        ("patch", "/api/agents/alpha/", {"interval_minutes": 0}, "interval_minutes"),
        ("patch", "/api/agents/alpha/", {"name": ""}, "name"),
    ],
)
def test_configuration_refused_by_the_serializer_is_audited_once(
    api, scene, method, path, body, field
):
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 400 and field in response.json()
    action = "create" if method == "post" else "configure"
    slug = "alpha" if "alpha" in path else body["slug"]
    assert_one_refusal(action, slug, field)
    assert not Agent.objects.filter(slug__in=["new", "bad slug!"]).exists()


def test_configuration_refused_by_the_service_is_audited_once(api, scene):
    response = api.post("/api/agents/", {"slug": "new", "kind": "nope"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()
    assert_one_refusal("create", "new", "kind")


@pytest.mark.parametrize(
    ("method", "path", "body", "action", "words"),
    [
        ("post", "/api/agents/alpha/pause/", None, "pause", ["not running"]),
        ("put", "/api/agents/alpha/interval/", {"interval_minutes": 0}, "set_interval", ["1"]),
        ("post", "/api/agents/alpha/start/", {"why": "x"}, "start", ["why"]),
        ("post", "/api/agent/stop", None, "stop", ["not running"]),
        ("put", "/api/agent/interval", {"interval_minutes": 99999}, "set_interval", ["10080"]),
        ("post", "/api/agents/nobody/start/", None, "start", ["Not found"]),
        ("patch", "/api/agents/nobody/", {"name": "x"}, "configure", ["Not found"]),
        ("delete", "/api/agents/nobody/", None, "delete", ["Not found"]),
    ],
)
def test_other_refusals_are_audited_exactly_once(api, scene, method, path, body, action, words):
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code in (400, 404, 409)
    slug = "nobody" if "nobody" in path else slug_of(path)
    assert_one_refusal(action, slug, *words)


@pytest.mark.parametrize(("method", "path", "action"), CONTROL + CONFIG)
def test_permission_refusals_are_audited_exactly_once(scene, method, path, action):
    user = UserFactory(username="operator", perms=["runner.view_agent"])
    response = getattr(token_client(user), method)(path, {"reason": "r"}, format="json")
    assert response.status_code == 403
    assert_one_refusal(action, slug_of(path), "Permission denied")


def test_reads_and_anonymous_requests_leave_no_event(api, scene, client):
    assert api.get("/api/agents/nobody/").status_code == 404
    assert api.get("/api/agent/status", {"x": 1}).status_code == 200
    assert client.post("/api/agents/alpha/start/", "x", content_type="text/plain").status_code in (
        401,
        403,
    )
    assert not AuditEvent.objects.exists()
