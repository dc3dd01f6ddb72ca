"""Wiring of the agent resource and its control actions: status code, body, the service's effect."""

import pytest

from runner.models import Agent, AuditEvent, CycleRun

pytestmark = pytest.mark.django_db


def url(slug, action=None):
    return f"/api/agents/{slug}/" + (f"{action}/" if action else "")


def last_event():
    return AuditEvent.objects.order_by("-id").first()


def test_list_and_retrieve_show_configuration_and_read_only_state(api, agent):
    listed = api.get("/api/agents/")
    assert listed.status_code == 200
    assert "alpha" in [row["slug"] for row in listed.json()]
    body = api.get(url("alpha")).json()
    for field in (
        "slug", "name", "kind", "parameters", "interval_minutes", "timeout_seconds",
        "max_consecutive_failures", "trading_mode", "state", "next_run", "last_run",
        "run_count", "success_count", "error_count", "consecutive_failures", "last_error",
    ):  # fmt: skip
        assert field in body, field
    assert body["state"] == "stopped" and body["parameters"] == {"value": 3}


def test_create_goes_through_the_service_and_is_audited(api):
    response = api.post(
        "/api/agents/", {"slug": "beta", "kind": "test-ok", "interval_minutes": 15}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["interval_minutes"] == 15
    assert Agent.objects.get(slug="beta").name == "beta"
    event = last_event()
    assert (event.action, event.outcome, event.source, event.agent_slug) == (
        "create", "applied", "api", "beta",
    )  # fmt: skip


def test_create_with_unknown_kind_is_400_naming_kind_and_creates_nothing(api):
    response = api.post("/api/agents/", {"slug": "gamma", "kind": "nope"}, format="json")
    assert response.status_code == 400
    assert "kind" in response.json()
    assert not Agent.objects.filter(slug="gamma").exists()


def test_state_fields_are_read_only_on_update(api, agent):
    response = api.patch(url("alpha"), {"state": "running"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"state": ["This field is read-only."]}
    agent.refresh_from_db()
    assert agent.state == "stopped"


def test_update_edits_configuration_with_before_and_after(api, agent):
    response = api.patch(url("alpha"), {"name": "Renamed", "timeout_seconds": 42}, format="json")
    assert response.status_code == 200, response.json()
    agent.refresh_from_db()
    assert (agent.name, agent.timeout_seconds) == ("Renamed", 42)
    event = last_event()
    assert event.action == "configure" and event.changes["timeout_seconds"] == {
        "before": 300, "after": 42,
    }  # fmt: skip


def test_update_refuses_unknown_fields_and_out_of_range_values(api, agent):
    unknown = api.patch(url("alpha"), {"colour": "red"}, format="json")
    assert unknown.status_code == 400 and "colour" in unknown.json()
    too_long = api.patch(url("alpha"), {"timeout_seconds": 999999}, format="json")
    assert too_long.status_code == 400 and "timeout_seconds" in too_long.json()
    agent.refresh_from_db()
    assert agent.timeout_seconds == 300


def test_delete_goes_through_the_service(api, agent):
    assert api.delete(url("alpha")).status_code == 204
    assert not Agent.objects.filter(slug="alpha").exists()
    assert last_event().action == "delete"


def test_unknown_agent_is_404(api):
    assert api.get(url("nobody")).status_code == 404
    assert api.post(url("nobody", "start")).status_code == 404


def test_start_stop_pause_resume_cycle_through_the_services(api, agent):
    started = api.post(url("alpha", "start"), {"reason": "market open"}, format="json")
    assert started.status_code == 200 and started.json()["state"] == "running"
    assert started.json()["next_run"] is not None
    assert api.post(url("alpha", "pause")).json()["state"] == "paused"
    assert api.post(url("alpha", "resume")).json()["state"] == "running"
    assert api.post(url("alpha", "stop")).json()["state"] == "stopped"
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "outcome"))
    assert actions == [
        ("start", "applied"), ("pause", "applied"), ("resume", "applied"), ("stop", "applied"),
    ]  # fmt: skip
    assert AuditEvent.objects.order_by("id").first().reason == "market open"


def test_refused_transition_is_409_with_state_and_audited(api, agent):
    response = api.post(url("alpha", "pause"))
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Agent is not running", "state": "stopped",
    }  # fmt: skip
    event = last_event()
    assert (event.action, event.outcome, event.refusal_reason) == (
        "pause", "refused", "Agent is not running",
    )  # fmt: skip


def test_status_action(api, agent):
    body = api.get(url("alpha", "status")).json()
    assert body["agent"] == "alpha" and body["state"] == "stopped"
    assert body["running"] is False and body["current_run"] is None


def test_run_once_answers_202_with_the_queued_run(api, agent):
    response = api.post(url("alpha", "run-once"), {"reason": "check"}, format="json")
    assert response.status_code == 202
    run = CycleRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.trigger, run.agent.slug) == ("queued", "manual", "alpha")
    assert response.json()["status"] == "queued"
    assert run.control_event.action == "run_once"
    again = api.post(url("alpha", "run-once"))
    assert again.status_code == 409 and "in flight" in again.json()["detail"]


def test_interval_is_set_through_the_service(api, agent):
    response = api.put(url("alpha", "interval"), {"interval_minutes": 30}, format="json")
    assert response.status_code == 200 and response.json()["interval_minutes"] == 30
    event = last_event()
    assert event.action == "set_interval"
    assert event.changes == {"interval_minutes": {"before": 60, "after": 30}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interval_minutes": 0}, "interval_minutes"),
        ({"interval_minutes": 10081}, "interval_minutes"),
        ({"interval_minutes": 2.5}, "interval_minutes"),
        ({"interval_minutes": "30"}, "interval_minutes"),
        ({"interval_minutes": True}, "interval_minutes"),
        ({"interval_minutes": None}, "interval_minutes"),
        ({}, "interval_minutes"),
        ({"interval_minutes": 30, "extra": 1}, "extra"),
        ({"interval_minutes": 30, "reason": 5}, "reason"),
        ({"interval_minutes": 30, "reason": "x" * 1001}, "reason"),
    ],
)
def test_bad_interval_requests_are_400_naming_the_field_audited_and_change_nothing(
    api, agent, body, field
):
    response = api.put(url("alpha", "interval"), body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    agent.refresh_from_db()
    assert agent.interval_minutes == 60
    event = last_event()
    assert (event.action, event.outcome, event.agent_slug) == ("set_interval", "refused", "alpha")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"reason": ', "body"),
        ("[1, 2]", "body"),
        ('"start"', "body"),
        ('{"why": "x"}', "why"),
        ('{"reason": ["a"]}', "reason"),
    ],
)
def test_bad_control_bodies_are_400_naming_the_field(api, agent, raw, field):
    response = api.post(url("alpha", "start"), raw, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    agent.refresh_from_db()
    assert agent.state == "stopped"
    assert last_event().outcome == "refused"


def test_over_long_reason_is_refused_by_the_service(api, agent):
    response = api.post(url("alpha", "start"), {"reason": "r" * 1001}, format="json")
    assert response.status_code == 400
    assert "1000" in response.json()["reason"][0]
    agent.refresh_from_db()
    assert agent.state == "stopped"


def test_control_event_records_client_ip_request_id_and_reason(api, agent):
    response = api.post(
        url("alpha", "start"),
        {"reason": "deploy check"},
        format="json",
        HTTP_X_REQUEST_ID="req-abc-123",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-abc-123"
    event = last_event()
    assert (event.client_ip, event.request_id, event.reason, event.actor_username) == (
        "10.1.2.3", "req-abc-123", "deploy check", "operator",
    )  # fmt: skip


def test_request_id_is_generated_when_absent_or_unusable(api, agent):
    generated = api.post(url("alpha", "start"))
    request_id = generated["X-Request-ID"]
    assert len(request_id) == 32
    assert last_event().request_id == request_id
    odd = api.post(url("alpha", "stop"), HTTP_X_REQUEST_ID="bad id with spaces" + "x" * 80)
    assert odd["X-Request-ID"] != "bad id with spaces" + "x" * 80
    assert last_event().request_id == odd["X-Request-ID"]


def test_non_json_body_is_refused(api, agent):
    response = api.post(url("alpha", "start"), "reason=x", content_type="text/plain")
    assert response.status_code == 415
    agent.refresh_from_db()
    assert agent.state == "stopped"


@pytest.mark.parametrize("raw", ['""', "null", "0", "false"])
def test_json_bodies_that_are_not_objects_are_refused(api, agent, raw):
    response = api.post(url("alpha", "run-once"), raw, content_type="application/json")
    assert response.status_code == 400 and "body" in response.json()
    assert not CycleRun.objects.exists()


def test_no_body_at_all_is_fine(api, agent):
    assert api.post(url("alpha", "start")).status_code == 200


def test_nul_characters_are_refused_before_they_reach_the_database(api, agent):
    """PostgreSQL text and jsonb cannot hold NUL; such input is a 400 (or 404), never a 500."""
    reason = api.post(url("alpha", "start"), {"reason": "a\x00b"}, format="json")
    assert reason.status_code == 400 and "reason" in reason.json()
    assert last_event().outcome == "refused"
    assert api.get("/api/agents/al%00pha/").status_code == 404
    params = api.patch(url("alpha"), {"parameters": {"value\x00": 1}}, format="json")
    assert params.status_code == 400 and "parameters" in params.json()
    assert api.get("/api/runs/?agent=al%00pha").status_code == 400
    assert api.get("/api/events/?cursor=%00").status_code == 400
    agent.refresh_from_db()
    assert agent.state == "stopped" and agent.parameters == {"value": 3}
