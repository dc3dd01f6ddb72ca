"""Every URL under /api/ is closed to anonymous users and to users without the permission.

The matrix is built by walking the URL configuration, so an endpoint added without an entry in
EXPECTED fails here until someone decides (and this test checks) who may call it.
"""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from runner import services
from runner.actors import Actor
from runner.models import Agent, AgentConfigVersion, AuditEvent
from runner.versions import config_of
from tests.agents.factories import TradeDecisionFactory
from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory, UserFactory
from tests.runner.api.conftest import token_client

VIEW, CONTROL = "runner.view_agent", "runner.control_agent"
ADD, CHANGE, DELETE = "runner.add_agent", "runner.change_agent", "runner.delete_agent"
AUTHENTICATED = None  # any logged-in user (the schema and its docs)

# (url name, method) -> (permission, JSON body, state the agent must be in for a 2xx)
EXPECTED = {
    ("api:agent-list", "GET"): (VIEW, None, "stopped"),
    ("api:agent-list", "POST"): (ADD, {"slug": "created", "kind": "test-ok"}, "stopped"),
    ("api:agent-detail", "GET"): (VIEW, None, "stopped"),
    ("api:agent-detail", "PUT"): (CHANGE, {"name": "n", "kind": "test-ok"}, "stopped"),
    ("api:agent-detail", "PATCH"): (CHANGE, {"name": "n"}, "stopped"),
    ("api:agent-detail", "DELETE"): (DELETE, None, "stopped"),
    ("api:agent-status", "GET"): (VIEW, None, "stopped"),
    ("api:agent-start", "POST"): (CONTROL, {"reason": "r"}, "stopped"),
    ("api:agent-stop", "POST"): (CONTROL, None, "running"),
    ("api:agent-pause", "POST"): (CONTROL, None, "running"),
    ("api:agent-resume", "POST"): (CONTROL, None, "paused"),
    ("api:agent-run-once", "POST"): (CONTROL, None, "stopped"),
    ("api:agent-interval", "PUT"): (CONTROL, {"interval_minutes": 5}, "stopped"),
    ("api:agent-schedule", "GET"): (VIEW, None, "stopped"),
    ("api:agent-backfill", "POST"): (
        CONTROL,
        {"from": "2026-01-01T00:00Z", "to": "2026-01-01T02:00Z"},
        "stopped",
    ),
    ("api:run-list", "GET"): (VIEW, None, "stopped"),
    ("api:run-detail", "GET"): (VIEW, None, "stopped"),
    ("api:run-log", "GET"): (VIEW, None, "stopped"),
    ("api:event-list", "GET"): (VIEW, None, "stopped"),
    ("api:event-detail", "GET"): (VIEW, None, "stopped"),
    ("api:seed-status", "GET"): (VIEW, None, "stopped"),
    ("api:seed-start", "POST"): (CONTROL, None, "stopped"),
    ("api:seed-stop", "POST"): (CONTROL, None, "running"),
    ("api:seed-pause", "POST"): (CONTROL, None, "running"),
    ("api:seed-resume", "POST"): (CONTROL, None, "paused"),
    ("api:seed-run-once", "POST"): (CONTROL, None, "stopped"),
    ("api:seed-interval", "PUT"): (CONTROL, {"interval_minutes": 5}, "stopped"),
    ("api:seed-interval", "POST"): (CONTROL, {"interval_minutes": 5}, "stopped"),
    ("api-agent-report", "GET"): (VIEW, None, "stopped"),
    ("api-reports", "GET"): (VIEW, None, "stopped"),
    ("forecast-list", "GET"): (VIEW, None, "stopped"),
    ("forecast-detail", "GET"): (VIEW, None, "stopped"),
    ("decision-list", "GET"): (VIEW, None, "stopped"),
    ("decision-detail", "GET"): (VIEW, None, "stopped"),
    ("api:agent-versions", "GET"): (VIEW, None, "stopped"),
    ("api:agent-version", "GET"): (VIEW, None, "stopped"),
    ("api:agent-version-diff", "GET"): (VIEW, None, "stopped"),
    ("api:agent-version-restore", "POST"): (CHANGE, {"reason": "r"}, "stopped"),
    ("api:schema", "GET"): (AUTHENTICATED, None, "stopped"),
    ("api:docs", "GET"): (AUTHENTICATED, None, "stopped"),
}


def _walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            space = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, route, space)
        elif isinstance(entry, URLPattern):
            yield route, f"{namespace}{entry.name}", entry.callback


def _methods(callback):
    """The methods a route serves (HEAD and OPTIONS follow GET and the view's permission)."""
    actions = getattr(callback, "actions", None)
    if actions:
        names = set(actions)
    else:
        view_class = callback.view_class
        names = {m for m in view_class.http_method_names if hasattr(view_class, m)}
    return sorted(m.upper() for m in names - {"head", "options"})


def api_endpoints():
    found = []
    for route, name, callback in _walk(get_resolver().url_patterns):
        if route.startswith("api/"):
            found.extend((name, method) for method in _methods(callback))
    return found


def test_every_api_endpoint_has_an_expectation_and_every_expectation_exists():
    found = set(api_endpoints())
    assert found - set(EXPECTED) == set(), "new endpoints need an entry in EXPECTED"
    assert set(EXPECTED) - found == set(), "EXPECTED lists endpoints that no longer exist"


@pytest.fixture
def scene(db, settings):
    settings.RUNNER_API_RUN_ONCE_GRACE_SECONDS = 0.0
    settings.RUNNER_API_RUN_ONCE_WAIT_SECONDS = 0.0
    agent = AgentFactory(slug="matrix", kind="test-ok")
    settings.RUNNER_DEFAULT_AGENT = "matrix"
    run = CycleRunFactory(agent=agent)
    event = AuditEventFactory(agent=agent)
    # Two configuration versions, so restoring the older one changes something.
    for number, name in ((1, "Older name"), (2, agent.name)):
        AgentConfigVersion.objects.create(
            agent=agent,
            number=number,
            config={**config_of(agent), "name": name},
            action="configure",
            source="api",
            created_at=timezone.now(),
        )
    decision = TradeDecisionFactory()
    return {"agent": agent, "run": run, "event": event, "decision": decision}


def _put_in_state(agent, state):
    actor = Actor.system()
    if state in ("running", "paused"):
        services.agent_start(agent=agent, actor=actor)
    if state == "paused":
        services.agent_pause(agent=agent, actor=actor)


def _url(name, scene):
    kwargs = {}
    if (name.startswith("api:agent-") and name != "api:agent-list") or name == "api-agent-report":
        kwargs["slug"] = scene["agent"].slug
    if name in ("api:agent-version", "api:agent-version-restore"):
        kwargs["number"] = 1
    if name == "forecast-detail":
        kwargs["pk"] = scene["decision"].forecast.pk
    if name == "decision-detail":
        kwargs["pk"] = scene["decision"].pk
    if name == "api:run-detail":
        kwargs["pk"] = scene["run"].pk
    if name == "api:run-log":
        kwargs["id"] = scene["run"].pk
    if name == "api:event-detail":
        kwargs["pk"] = scene["event"].pk
    return reverse(name, kwargs=kwargs)


def _call(client, method, url, body):
    return (
        getattr(client, method.lower())(url, body, format="json")
        if body is not None
        else (getattr(client, method.lower())(url))
    )


@pytest.mark.parametrize(("name", "method"), sorted(EXPECTED))
def test_anonymous_requests_are_refused_with_401(scene, name, method):
    permission, body, state = EXPECTED[(name, method)]
    response = _call(APIClient(), method, _url(name, scene), body)
    assert response.status_code == 401, (name, method, response.status_code)
    assert not AuditEvent.objects.exclude(pk=scene["event"].pk).exists()


@pytest.mark.parametrize(("name", "method"), sorted(EXPECTED))
def test_users_without_the_permission_get_403_and_control_is_audited(scene, name, method):
    permission, body, state = EXPECTED[(name, method)]
    _put_in_state(scene["agent"], state)
    applied_before = AuditEvent.objects.filter(outcome="applied").count()
    other_perms = [p for p in (VIEW, CONTROL, ADD, CHANGE, DELETE) if p != permission]
    user = UserFactory(username="limited", perms=other_perms if permission else [])
    response = _call(token_client(user), method, _url(name, scene), body)
    if permission is AUTHENTICATED:
        assert response.status_code == 200
        return
    assert response.status_code == 403, (name, method, response.status_code)
    assert AuditEvent.objects.filter(outcome="applied").count() == applied_before
    if method != "GET":
        event = AuditEvent.objects.order_by("-id").first()
        assert (event.outcome, event.actor_username) == ("refused", "limited")
        assert event.refusal_reason == f"Permission denied: {permission} is required."
        assert event.source == "api" and event.request_id


@pytest.mark.parametrize(("name", "method"), sorted(EXPECTED))
def test_users_with_just_the_permission_get_2xx(scene, name, method):
    permission, body, state = EXPECTED[(name, method)]
    _put_in_state(scene["agent"], state)
    user = UserFactory(username="allowed", perms=[permission] if permission else [])
    response = _call(token_client(user), method, _url(name, scene), body)
    assert 200 <= response.status_code < 300, (
        name,
        method,
        response.status_code,
        response.content[:300],
    )


def test_session_post_without_csrf_token_is_refused(db, settings):
    AgentFactory(slug="csrf", kind="test-ok")
    user = UserFactory(username="browser", perms=[CONTROL, VIEW])
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    refused = client.post("/api/agents/csrf/start/", "{}", content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert Agent.objects.get(slug="csrf").state == "stopped"
    # The same session with its CSRF token is let through: the refusal was about CSRF alone.
    client.get("/api/agents/", HTTP_ACCEPT="text/html")  # the browsable API sets the cookie
    token = client.cookies["csrftoken"].value
    allowed = client.post(
        "/api/agents/csrf/start/", "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert allowed.status_code == 200
    assert Agent.objects.get(slug="csrf").state == "running"


def test_session_get_works_for_the_browsable_api_and_docs(db):
    user = UserFactory(username="reader", perms=[VIEW])
    client = Client()
    client.force_login(user)
    assert client.get("/api/agents/", HTTP_ACCEPT="text/html").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert (
        b"cdn" not in docs.content.lower() and b"/static/drf_spectacular_sidecar/" in docs.content
    )


def test_refusal_for_an_unknown_agent_is_audited_with_the_slug_asked_for(db):
    user = UserFactory(username="nosy", perms=[VIEW])
    slug = "x" * 100
    response = token_client(user).post(f"/api/agents/{slug}/start/")
    assert response.status_code == 403
    event = AuditEvent.objects.get()
    assert (event.agent_id, event.agent_slug, event.outcome) == (None, "x" * 64, "refused")
