"""The seed's endpoints on the default agent: its paths, fields, messages and error shape."""

import pytest

from runner.models import AuditEvent

STATUS_FIELDS = {
    "state", "running", "last_run", "next_run", "interval_minutes", "run_count", "error_count",
    "last_error", "total_forecasts", "total_trades",
}  # fmt: skip


@pytest.mark.django_db
def test_status_has_the_seed_fields(api, default_agent):
    response = api.get("/api/agent/status")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == STATUS_FIELDS
    assert body["state"] == "stopped" and body["running"] is False
    assert (body["total_forecasts"], body["total_trades"], body["last_error"]) == (0, 0, None)


def forecast_totals_for_test(agent):
    return {"total_forecasts": 7, "total_trades": 2, "agent_seen": agent.slug}


def broken_extra(agent):
    raise RuntimeError("extra is broken")


@pytest.mark.django_db
def test_status_totals_come_from_the_configured_extras(api, default_agent, settings):
    settings.RUNNER_STATUS_EXTRAS = [
        "tests.runner.api.test_seed.broken_extra",
        "tests.runner.api.test_seed.forecast_totals_for_test",
    ]
    body = api.get("/api/agent/status").json()
    assert (body["total_forecasts"], body["total_trades"]) == (7, 2)


@pytest.mark.django_db
def test_start_stop_pause_resume_answer_in_the_seed_shape(api, default_agent):
    started = api.post("/api/agent/start")
    assert started.status_code == 200
    assert set(started.json()) == {"status", "message", "next_run"}
    assert started.json()["status"] == "started" and started.json()["next_run"]
    assert api.post("/api/agent/pause").json() == {"status": "paused", "message": "Agent paused"}
    assert api.post("/api/agent/resume").json() == {"status": "resumed", "message": "Agent resumed"}
    assert api.post("/api/agent/stop").json() == {
        "status": "stopped", "message": "Agent stopped successfully",
    }  # fmt: skip
    assert list(
        AuditEvent.objects.filter(agent=default_agent)
        .order_by("id")
        .values_list("action", "source")
    ) == [("start", "api"), ("pause", "api"), ("resume", "api"), ("stop", "api")]


@pytest.mark.django_db
def test_refusals_are_400_with_detail_like_the_seed(api, default_agent):
    api.post("/api/agent/start")
    again = api.post("/api/agent/start")
    assert again.status_code == 400
    assert again.json() == {"detail": "Agent is already running"}
    api.post("/api/agent/stop")
    stopped = api.post("/api/agent/stop")
    assert (stopped.status_code, stopped.json()) == (400, {"detail": "Agent is not running"})
    assert AuditEvent.objects.filter(outcome="refused").count() == 2


@pytest.mark.django_db
def test_interval_in_the_seed_shape_and_its_errors(api, default_agent):
    response = api.put("/api/agent/interval", {"interval_minutes": 30}, format="json")
    assert response.json() == {
        "status": "updated", "interval_minutes": 30, "message": "Interval updated to 30 minutes",
    }  # fmt: skip
    bad = api.put("/api/agent/interval", {"interval_minutes": 0}, format="json")
    assert bad.status_code == 400
    assert bad.json() == {
        "detail": "Interval must be at least 1 minute",
        "field": "interval_minutes",
    }
    high = api.put("/api/agent/interval", {"interval_minutes": 10081}, format="json")
    assert high.json() == {
        "detail": "Interval must be at most 10080 minutes", "field": "interval_minutes",
    }  # fmt: skip
    typed = api.put("/api/agent/interval", {"interval_minutes": "ten"}, format="json")
    assert typed.json() == {
        "detail": "interval_minutes must be a whole number from 1 to 10080.",
        "field": "interval_minutes",
    }
    unknown = api.put("/api/agent/interval", {"minutes": 5}, format="json")
    assert unknown.status_code == 400 and unknown.json()["field"] == "minutes"
    malformed = api.put("/api/agent/interval", "{", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json()["field"] == "body"
    default_agent.refresh_from_db()
    assert default_agent.interval_minutes == 30


@pytest.mark.django_db
def test_missing_default_agent_is_404_not_500(api, settings):
    settings.RUNNER_DEFAULT_AGENT = "no-such-agent"
    response = api.get("/api/agent/status")
    assert response.status_code == 404 and "no-such-agent" in response.json()["detail"]
    assert api.post("/api/agent/start").status_code == 404


@pytest.mark.django_db
def test_interval_is_accepted_by_post_too_as_the_fork_server_does(api, default_agent):
    response = api.post("/api/agent/interval", {"interval_minutes": 15}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "status": "updated", "interval_minutes": 15, "message": "Interval updated to 15 minutes",
    }  # fmt: skip
    low = api.post("/api/agent/interval", {"interval_minutes": 0}, format="json")
    assert (low.status_code, low.json()["detail"]) == (400, "Interval must be at least 1 minute")
    default_agent.refresh_from_db()
    assert default_agent.interval_minutes == 15
    assert list(
        AuditEvent.objects.filter(agent=default_agent)
        .order_by("id")
        .values_list("action", "outcome")
    ) == [("set_interval", "applied"), ("set_interval", "refused")]


@pytest.mark.django_db
def test_status_counts_cycles_as_the_seed_did(api, default_agent):
    """The seed's run_count and last_run were its successful cycles; error_count and last_error
    its failed ones. The main API keeps all four of the runner's counters."""
    from datetime import UTC, datetime

    from runner.models import Agent

    succeeded = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    started = datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC)
    Agent.objects.filter(pk=default_agent.pk).update(
        run_count=7,
        success_count=4,
        error_count=3,
        last_run=started,
        last_success=succeeded,
        last_error="BoomError: no",
    )
    body = api.get("/api/agent/status").json()
    assert (body["run_count"], body["error_count"], body["last_error"]) == (4, 3, "BoomError: no")
    assert body["last_run"] == "2026-01-02T03:04:05Z"
    main = api.get(f"/api/agents/{default_agent.slug}/status/").json()
    assert (main["run_count"], main["success_count"], main["error_count"]) == (7, 4, 3)
