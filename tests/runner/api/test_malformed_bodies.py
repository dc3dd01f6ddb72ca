"""Bodies no client should send: nested past any sense, lone surrogates, over the size limit.

Each is a 400 (or 413) that names the field (or `body`), changes nothing, and leaves exactly one
`refused` audit event; none is a 500, on PostgreSQL or SQLite.
"""

import json

import pytest

from runner.models import Agent, AuditEvent
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

MAX_JSON_DEPTH = 64  # the documented limit (README, Errors)


def nested(depth):
    return "[" * depth + "]" * depth


# (method, path, JSON text with {x} where the bad value goes, the field the answer names)
CONFIG_CASES = [
    ("post", "/api/agents/", '{{"slug": "new", "kind": "test-fail", "parameters": {x}}}', "parameters"),
    ("put", "/api/agents/alpha/", '{{"name": "n", "kind": "test-fail", "parameters": {x}}}', "parameters"),
    ("patch", "/api/agents/alpha/", '{{"parameters": {x}}}', "parameters"),
    ("patch", "/api/agents/alpha/", '{{"name": {x}}}', "name"),
]  # fmt: skip
CONTROL_CASES = [
    ("post", "/api/agents/alpha/start/", '{{"reason": {x}}}', "reason"),
    ("post", "/api/agents/alpha/run-once/", '{{"reason": {x}}}', "reason"),
    ("put", "/api/agents/alpha/interval/", '{{"interval_minutes": {x}}}', "interval_minutes"),
]
SEED_CASES = [
    ("post", "/api/agent/start", '{{"reason": {x}}}', "reason"),
    ("put", "/api/agent/interval", '{{"interval_minutes": 5, "reason": {x}}}', "reason"),
]
ALL_CASES = CONFIG_CASES + CONTROL_CASES + SEED_CASES


@pytest.fixture
def scene(default_agent):
    """`alpha` is of a kind that keeps its parameters as given, so they reach the database."""
    return {"alpha": AgentFactory(slug="alpha", kind="test-fail"), "default": default_agent}


def send(api, method, path, text):
    return getattr(api, method)(path, text.encode("utf-8"), content_type="application/json")


def named_field(response, path):
    """The field an error names: the seed's `{"detail", "field"}`, or the API's `{field: [...]}`."""
    body = response.json()
    if path.startswith("/api/agent/"):
        assert set(body) == {"detail", "field"}, body
        return body["field"]
    assert len(body) == 1, body
    [(field, messages)] = body.items()
    assert isinstance(messages, list) and messages[0]
    return field


def assert_nothing_changed(scene):
    for slug in ("alpha", "default"):
        agent = Agent.objects.get(slug=slug)
        assert agent.state == "stopped"
        assert agent.interval_minutes == scene[slug].interval_minutes
        assert agent.parameters == scene[slug].parameters
    assert not Agent.objects.filter(slug="new").exists()
    assert AuditEvent.objects.filter(outcome="applied").count() == 0


@pytest.mark.parametrize(("method", "path", "template", "field"), ALL_CASES)
@pytest.mark.parametrize("depth", [100_000, 900, MAX_JSON_DEPTH + 1])
def test_deeply_nested_json_is_400_naming_the_field(
    api, scene, method, path, template, field, depth
):
    response = send(api, method, path, template.format(x=nested(depth)))
    assert response.status_code == 400, response.content[:300]
    assert named_field(response, path) == field
    assert str(MAX_JSON_DEPTH) in str(response.json())
    assert_nothing_changed(scene)
    [event] = AuditEvent.objects.all()
    assert event.outcome == "refused" and str(MAX_JSON_DEPTH) in event.refusal_reason


def test_a_deeply_nested_body_itself_is_400_naming_body(api, scene):
    response = send(api, "post", "/api/agents/alpha/start/", nested(100_000))
    assert response.status_code == 400
    assert named_field(response, "/api/agents/") == "body"
    seed = send(api, "post", "/api/agent/stop", "[" * 100_000)
    assert seed.status_code == 400 and named_field(seed, "/api/agent/") == "body"
    assert_nothing_changed(scene)


def test_nesting_up_to_the_limit_is_accepted(api, scene):
    text = '{"parameters": {"deep": ' + nested(MAX_JSON_DEPTH - 2) + "}}"
    response = send(api, "patch", "/api/agents/alpha/", text)
    assert response.status_code == 200, response.json()
    assert Agent.objects.get(slug="alpha").parameters == json.loads(text)["parameters"]


SURROGATES = [r'"\ud800"', r'"a\udfffb"', r'{"\ud83d": 1}', r'["ok", "\udc00"]']


@pytest.mark.parametrize(("method", "path", "template", "field"), ALL_CASES)
@pytest.mark.parametrize("value", SURROGATES)
def test_lone_surrogates_are_400_naming_the_field(api, scene, method, path, template, field, value):
    response = send(api, method, path, template.format(x=value))
    assert response.status_code == 400, response.content[:300]
    assert named_field(response, path) == field
    assert "surrogate" in str(response.json())
    assert_nothing_changed(scene)
    [event] = AuditEvent.objects.all()
    assert event.outcome == "refused" and "surrogate" in event.refusal_reason


def test_a_lone_surrogate_in_a_field_name_is_400_naming_body(api, scene):
    response = send(api, "post", "/api/agents/alpha/start/", r'{"\udead": "x"}')
    assert response.status_code == 400 and named_field(response, "/api/agents/") == "body"
    patch = send(api, "patch", "/api/agents/alpha/", r'{"na\ud800me": "x"}')
    assert patch.status_code == 400 and named_field(patch, "/api/agents/") == "body"
    assert_nothing_changed(scene)
    assert AuditEvent.objects.filter(outcome="refused").count() == 2


def test_surrogate_pairs_are_ordinary_text(api, scene):
    response = send(api, "post", "/api/agents/alpha/start/", r'{"reason": "rocket \ud83d\ude80"}')
    assert response.status_code == 200, response.json()
    assert AuditEvent.objects.get().reason == "rocket \U0001f680"


@pytest.mark.parametrize(("method", "path", "template", "field"), ALL_CASES)
def test_a_body_over_the_size_limit_is_413_json_naming_the_limit(
    api, scene, settings, method, path, template, field
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = send(api, method, path, template.format(x='"' + "x" * 1200 + '"'))
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert "1000 bytes" in response.json()["detail"]
    assert_nothing_changed(scene)
    [event] = AuditEvent.objects.all()
    assert event.outcome == "refused" and "1000 bytes" in event.refusal_reason


def test_a_form_over_the_size_limit_is_413_too(api, scene, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    form = api.post(
        "/api/agents/alpha/start/",
        "reason=" + "x" * 1200,
        content_type="application/x-www-form-urlencoded",
    )
    multipart = api.post("/api/agent/start", {"reason": "x" * 1200}, format="multipart")
    assert (form.status_code, multipart.status_code) == (413, 413)
    assert "1000 bytes" in form.json()["detail"] and "1000 bytes" in multipart.json()["detail"]
    assert_nothing_changed(scene)
    assert AuditEvent.objects.filter(outcome="refused").count() == 2


def test_a_request_django_refuses_before_any_view_is_answered_in_json_on_api_paths(api, client):
    response = api.get("/api/agents/", HTTP_HOST="evil.example")
    assert (response.status_code, response.json()) == (400, {"detail": "Bad request."})
    page = client.get("/admin/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_configuration_messages_name_the_allowed_range(api, scene):
    response = api.patch("/api/agents/alpha/", {"timeout_seconds": 999999}, format="json")
    assert response.json() == {"timeout_seconds": ["Must be a whole number from 1 to 3600."]}
    typed = api.patch("/api/agents/alpha/", {"interval_minutes": "5"}, format="json")
    assert typed.json() == {
        "interval_minutes": ["Expected an integer from 1 to 10080, got string."]
    }
