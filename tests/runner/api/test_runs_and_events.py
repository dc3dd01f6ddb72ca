"""Run history and audit trail over HTTP: read-only, filtered, newest first, cursor-paginated."""

from datetime import timedelta

import pytest
from django.utils import timezone

from runner import services
from runner.actors import Actor
from tests.factories import AgentFactory, AuditEventFactory, CycleRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(db):
    now = timezone.now()
    alpha, beta = AgentFactory(slug="alpha"), AgentFactory(slug="beta")
    runs = [
        CycleRunFactory(agent=alpha, status="succeeded", trigger="schedule", queued_at=now - timedelta(hours=3)),
        CycleRunFactory(agent=alpha, status="failed", trigger="manual", queued_at=now - timedelta(hours=2)),
        CycleRunFactory(agent=beta, status="succeeded", trigger="cli", queued_at=now - timedelta(hours=1)),
    ]  # fmt: skip
    return {"now": now, "alpha": alpha, "beta": beta, "runs": runs}


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_runs_newest_first_and_filtered(api, history):
    first, second, third = history["runs"]
    assert ids(api.get("/api/runs/")) == [third.pk, second.pk, first.pk]
    assert ids(api.get("/api/runs/?agent=alpha")) == [second.pk, first.pk]
    assert ids(api.get("/api/runs/?status=failed")) == [second.pk]
    assert ids(api.get("/api/runs/?trigger=cli")) == [third.pk]
    since = (history["now"] - timedelta(minutes=150)).isoformat()
    assert ids(api.get("/api/runs/", {"since": since})) == [third.pk, second.pk]
    until = (history["now"] - timedelta(minutes=150)).isoformat()
    assert ids(api.get("/api/runs/", {"until": until})) == [first.pk]


def test_run_detail_has_log_lines_and_traceback(api, history):
    run = history["runs"][1]
    body = api.get(f"/api/runs/{run.pk}/").json()
    assert body["agent"] == "alpha" and "log_lines" in body and "traceback" in body
    assert api.get("/api/runs/999999/").status_code == 404
    assert api.get("/api/runs/abc/").status_code == 404


@pytest.mark.parametrize(
    "query", ["status=exploded", "trigger=x", "since=yesterday", "until=2024-13-45T00:00:00Z"]
)
def test_invalid_filters_are_400_naming_the_filter(api, history, query):
    response = api.get(f"/api/runs/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_runs_paginate_by_cursor(api, history):
    agent = history["alpha"]
    for minutes in range(60):
        CycleRunFactory(agent=agent, queued_at=history["now"] - timedelta(days=1, minutes=minutes))
    page = api.get("/api/runs/").json()
    assert len(page["results"]) == 50 and page["next"] and page["previous"] is None
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 13 and rest["next"] is None
    seen = [r["id"] for r in page["results"] + rest["results"]]
    assert len(set(seen)) == 63
    assert api.get("/api/runs/?cursor=garbage").status_code == 404


def test_runs_and_events_are_read_only(api, history):
    run = history["runs"][0]
    assert api.post("/api/runs/", {}, format="json").status_code == 405
    assert api.delete(f"/api/runs/{run.pk}/").status_code == 405
    event = AuditEventFactory(agent=history["alpha"])
    assert api.patch(f"/api/events/{event.pk}/", {"reason": "x"}, format="json").status_code == 405
    assert api.delete(f"/api/events/{event.pk}/").status_code == 405


def test_events_filtered_by_agent_action_actor_source_outcome_and_time(api, history):
    alpha = history["alpha"]
    services.agent_start(agent=alpha, actor=Actor.cli())
    with pytest.raises(services.TransitionRefused):
        services.agent_start(agent=alpha, actor=Actor.cli())
    api.post("/api/agents/beta/start/", {"reason": "api"}, format="json")

    def rows(query):
        response = api.get(f"/api/events/?{query}")
        assert response.status_code == 200, response.content
        return [
            (r["agent"], r["action"], r["outcome"], r["source"]) for r in response.json()["results"]
        ]

    assert rows("") == [
        ("beta", "start", "applied", "api"),
        ("alpha", "start", "refused", "cli"),
        ("alpha", "start", "applied", "cli"),
    ]
    assert rows("agent=beta") == [("beta", "start", "applied", "api")]
    assert rows("outcome=refused") == [("alpha", "start", "refused", "cli")]
    assert rows("source=api&actor=operator") == [("beta", "start", "applied", "api")]
    assert rows("action=stop") == []
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert rows(f"since={later.replace('+', '%2B')}") == []


def test_odd_times_and_crafted_cursors_are_4xx_not_500(api, history):
    """Offsets PostgreSQL cannot parse are normalised to UTC; a forged cursor is just invalid."""
    import base64

    odd = api.get("/api/runs/", {"since": "0704-03-28T13:41:52+18:22"})
    assert odd.status_code == 200 and len(odd.json()["results"]) == 3
    assert api.get("/api/runs/", {"until": "0001-01-01T00:00:00+23:00"}).status_code == 400
    for position in ("garbage", "0704-03-28 13:41:52+18:22"):
        forged = base64.b64encode(f"o=0&r=0&p={position}".encode()).decode()
        response = api.get("/api/runs/", {"cursor": forged})
        assert response.status_code in (200, 404), response.content
