"""What a body may be: control requests take JSON, HTML forms and multipart; configuration takes
JSON of the schema's own types; a configuration save that changes nothing writes no event."""

import pytest

from runner.models import Agent, AuditEvent

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"


def last_event():
    return AuditEvent.objects.order_by("-id").first()


# --- control requests: form-encoded and multipart bodies, as `curl -d` and HTML forms send ------


@pytest.mark.parametrize("path", ["/api/agents/alpha/start/", "/api/agent/start"])
def test_control_accepts_a_form_encoded_reason(api, agent, default_agent, path):
    response = api.post(path, "reason=market+open%21", content_type=FORM)
    assert response.status_code == 200, response.json()
    event = last_event()
    assert (event.action, event.outcome, event.reason) == ("start", "applied", "market open!")


@pytest.mark.parametrize("path", ["/api/agents/alpha/run-once/", "/api/agent/stop"])
def test_control_accepts_a_multipart_reason(api, agent, default_agent, settings, path):
    settings.RUNNER_API_RUN_ONCE_WAIT_SECONDS = 0.0
    settings.RUNNER_API_RUN_ONCE_GRACE_SECONDS = 0.0
    if path == "/api/agent/stop":
        api.post("/api/agent/start")
    response = api.post(path, {"reason": "from a form"}, format="multipart")
    assert response.status_code in (200, 202), response.json()
    assert (last_event().outcome, last_event().reason) == ("applied", "from a form")


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/api/agents/alpha/interval/"), ("put", "/api/agent/interval")],
)
def test_interval_from_a_form_is_read_as_a_whole_number(api, agent, default_agent, method, path):
    response = getattr(api, method)(path, "interval_minutes=30&reason=slower", content_type=FORM)
    assert response.status_code == 200, response.json()
    assert response.json()["interval_minutes"] == 30
    assert last_event().changes["interval_minutes"]["after"] == 30
    multipart = getattr(api, method)(path, {"interval_minutes": "45"}, format="multipart")
    assert multipart.status_code == 200 and multipart.json()["interval_minutes"] == 45


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("interval_minutes=abc", "interval_minutes"),
        ("interval_minutes=2.5", "interval_minutes"),
        ("interval_minutes=0", "interval_minutes"),
        ("interval_minutes=", "interval_minutes"),
        ("interval_minutes=5&interval_minutes=6", "interval_minutes"),
        ("interval_minutes=5&colour=red", "colour"),
        ("interval_minutes=5&reason=a&reason=b", "reason"),
    ],
)
def test_bad_form_values_are_400_naming_the_field_and_change_nothing(api, agent, body, field):
    response = api.put("/api/agents/alpha/interval/", body, content_type=FORM)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    agent.refresh_from_db()
    assert agent.interval_minutes == 60
    assert [e.outcome for e in AuditEvent.objects.all()] == ["refused"]


def test_json_interval_must_still_be_a_number(api, agent):
    response = api.put("/api/agents/alpha/interval/", {"interval_minutes": "30"}, format="json")
    assert response.status_code == 400 and "interval_minutes" in response.json()


def test_a_file_is_not_a_reason(api, agent):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("why.txt", b"because")
    response = api.post("/api/agents/alpha/start/", {"reason": upload}, format="multipart")
    assert response.status_code == 400 and "reason" in response.json()
    agent.refresh_from_db()
    assert agent.state == "stopped"


def test_the_schema_lists_form_bodies_for_control_and_only_json_for_configuration(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path, method in [
        ("/api/agents/{slug}/start/", "post"),
        ("/api/agents/{slug}/interval/", "put"),
        ("/api/agent/stop", "post"),
        ("/api/agent/interval", "put"),
        ("/api/agent/interval", "post"),
    ]:
        content = paths[path][method]["requestBody"]["content"]
        assert {"application/json", FORM, "multipart/form-data"} <= set(content), (path, method)
    assert set(paths["/api/agents/{slug}/"]["patch"]["requestBody"]["content"]) == {
        "application/json"
    }


# --- configuration: the JSON types the schema says, nothing coerced ----------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("patch", "/api/agents/alpha/", {"name": 0}, "name"),
        ("patch", "/api/agents/alpha/", {"name": 1.5}, "name"),
        ("patch", "/api/agents/alpha/", {"name": True}, "name"),
        ("patch", "/api/agents/alpha/", {"name": ["a"]}, "name"),
        ("patch", "/api/agents/alpha/", {"kind": 7}, "kind"),
        ("patch", "/api/agents/alpha/", {"trading_mode": 0}, "trading_mode"),
        ("patch", "/api/agents/alpha/", {"interval_minutes": "30"}, "interval_minutes"),
        ("patch", "/api/agents/alpha/", {"timeout_seconds": "42"}, "timeout_seconds"),
        ("patch", "/api/agents/alpha/", {"timeout_seconds": True}, "timeout_seconds"),
        ("patch", "/api/agents/alpha/", {"max_consecutive_failures": "5"}, "max_consecutive_failures"),
        ("put", "/api/agents/alpha/", {"name": 5, "kind": "test-ok"}, "name"),
        ("post", "/api/agents/", {"slug": 123, "kind": "test-ok"}, "slug"),
        ("post", "/api/agents/", {"slug": "new", "kind": "test-ok", "name": 9}, "name"),
        ("post", "/api/agents/", {"slug": "new", "kind": "test-ok", "interval_minutes": "5"}, "interval_minutes"),
    ],
)  # fmt: skip
def test_configuration_refuses_wrong_json_types_naming_the_field(
    api, agent, method, path, body, field
):
    response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 400, response.json()
    assert list(response.json()) == [field]
    agent.refresh_from_db()
    assert (agent.name, agent.kind, agent.interval_minutes, agent.timeout_seconds) == (
        "Agent alpha", "test-ok", 60, 300,
    )  # fmt: skip
    assert not Agent.objects.filter(slug__in=["new", "123"]).exists()
    assert [e.outcome for e in AuditEvent.objects.all()] == ["refused"]


def test_configuration_still_takes_whole_numbers_written_as_json_numbers(api, agent):
    response = api.patch(
        "/api/agents/alpha/", {"interval_minutes": 30, "timeout_seconds": 120.0}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["interval_minutes"], response.json()["timeout_seconds"]) == (30, 120)


# --- a configuration save that changes nothing --------------------------------------------------


def test_patch_that_changes_nothing_answers_the_agent_and_writes_no_event(api, agent):
    same = {"name": agent.name, "interval_minutes": agent.interval_minutes}
    response = api.patch("/api/agents/alpha/", same, format="json")
    assert response.status_code == 200 and response.json()["name"] == agent.name
    empty = api.patch("/api/agents/alpha/", {}, format="json")
    assert empty.status_code == 200
    assert not AuditEvent.objects.exists()
    changed = api.patch("/api/agents/alpha/", {"name": "Renamed"}, format="json")
    assert changed.status_code == 200
    assert [(e.action, e.changes) for e in AuditEvent.objects.all()] == [
        ("configure", {"name": {"before": "Agent alpha", "after": "Renamed"}})
    ]


def test_the_browsable_api_offers_an_html_form_that_works(db, agent):
    """A logged-in browser gets a form with the action's own fields, and posting it (with the
    CSRF token, form-encoded as browsers send it) applies the action."""
    from django.test import Client

    from tests.factories import UserFactory

    user = UserFactory(username="browser", perms=["runner.view_agent", "runner.control_agent"])
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get("/api/agents/alpha/interval/", HTTP_ACCEPT="text/html")
    assert page.status_code == 405  # GET is not served, but the page offers the PUT form
    html = page.content.decode()
    assert 'name="interval_minutes"' in html and 'name="reason"' in html
    assert 'name="kind"' not in html
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        "/api/agents/alpha/start/",
        {"reason": "from the browser"},
        HTTP_X_CSRFTOKEN=token,
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content[:300]
    assert (last_event().action, last_event().reason) == ("start", "from the browser")
