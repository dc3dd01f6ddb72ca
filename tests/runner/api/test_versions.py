"""Configuration versions over HTTP: list, one version, diff, restore (and its refusals)."""

import pytest

from runner import execution, services
from runner.actors import Actor
from runner.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def versioned(db):
    """An agent with three versions: created, re-parametrised, re-timed."""
    agent = services.agent_create(
        values={"slug": "beta", "kind": "test-ok", "parameters": {"value": 1}},
        actor=Actor.cli(),
    )
    services.agent_update_config(
        agent=agent, values={"parameters": {"value": 2}}, actor=Actor.cli(), reason="tune"
    )
    services.agent_set_interval(agent=agent, interval_minutes=30, actor=Actor.cli())
    return agent


def test_the_list_is_newest_first_with_who_why_and_what_changed(api, versioned):
    body = api.get("/api/agents/beta/versions/").json()
    assert (body["agent"], body["current"]) == ("beta", 3)
    assert [v["number"] for v in body["results"]] == [3, 2, 1]
    tuned = body["results"][1]
    assert (tuned["action"], tuned["source"], tuned["reason"]) == ("configure", "cli", "tune")
    assert tuned["changes"] == [
        {"field": "parameters.value", "change": "changed", "before": 1, "after": 2}
    ]
    assert tuned["config"]["parameters"] == {"value": 2}
    assert tuned["audit_event"] == AuditEvent.objects.get(action="configure").pk
    page = api.get("/api/agents/beta/versions/?limit=1&before=3").json()
    assert [v["number"] for v in page["results"]] == [2]


def test_one_version_and_a_diff_between_any_two(api, versioned):
    one = api.get("/api/agents/beta/versions/1/").json()
    assert one["number"] == 1 and one["config"]["interval_minutes"] == 60
    diff = api.get("/api/agents/beta/versions/diff/?from=1&to=3").json()
    assert diff == {
        "agent": "beta",
        "from_version": 1,
        "to_version": 3,
        "changes": [
            {"field": "interval_minutes", "change": "changed", "before": 60, "after": 30},
            {"field": "parameters.value", "change": "changed", "before": 1, "after": 2},
        ],
    }
    latest = api.get("/api/agents/beta/versions/diff/").json()  # what the latest change did
    assert (latest["from_version"], latest["to_version"]) == (2, 3)
    assert [c["field"] for c in latest["changes"]] == ["interval_minutes"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("?from=9", "from"), ("?from=1&to=0", "to"), ("?from=x", "from"), ("?form=1", "form")],
)
def test_a_bad_diff_query_is_a_400_naming_the_parameter(api, versioned, query, field):
    response = api.get(f"/api/agents/beta/versions/diff/{query}")
    assert response.status_code == 400 and list(response.json()) == [field]


def test_unknown_agent_or_version_is_a_404(api, versioned):
    assert api.get("/api/agents/nope/versions/").status_code == 404
    assert api.get("/api/agents/beta/versions/4/").status_code == 404
    assert api.get("/api/agents/beta/versions/99999999999/").status_code == 404


def test_restore_applies_the_version_as_the_next_one(api, versioned):
    response = api.post("/api/agents/beta/versions/1/restore/", {"reason": "back"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["restored_from"], body["version"]) == (1, 4)
    assert body["agent"]["parameters"] == {"value": 1} and body["agent"]["interval_minutes"] == 60
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.outcome, event.source, event.actor_username, event.reason) == (
        "restore_version",
        "applied",
        "api",
        "operator",
        "back",
    )
    assert api.get("/api/agents/beta/versions/4/").json()["restored_from"] == 1


def test_restore_accepts_a_form_body_like_the_other_buttons(api, versioned):
    response = api.post("/api/agents/beta/versions/2/restore/", {"reason": "form"})
    assert response.status_code == 200 and response.json()["version"] == 4


def test_restoring_live_under_dry_run_is_a_400_naming_trading_mode_and_audited(
    api, versioned, settings
):
    settings.TRADING_MODE = "live"
    for mode in ("live", "dry_run"):
        edit = api.patch("/api/agents/beta/", {"trading_mode": mode}, format="json")
        assert edit.status_code == 200
    settings.TRADING_MODE = "dry_run"
    response = api.post("/api/agents/beta/versions/4/restore/", {}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["trading_mode"]
    assert "TRADING_MODE=live" in response.json()["trading_mode"][0]
    refused = AuditEvent.objects.filter(action="restore_version", outcome="refused")
    assert refused.count() == 1 and refused.get().source == "api"
    assert api.get("/api/agents/beta/").json()["trading_mode"] == "dry_run"


@pytest.mark.parametrize(
    ("url", "body", "status", "key"),
    [
        ("/api/agents/beta/versions/3/restore/", {}, 409, "detail"),  # already the configuration
        ("/api/agents/beta/versions/8/restore/", {}, 400, "version"),
        ("/api/agents/beta/versions/1/restore/", {"reason": 5}, 400, "reason"),
        ("/api/agents/beta/versions/1/restore/", {"why": "x"}, 400, "why"),
    ],
)
def test_each_refused_restore_is_answered_and_audited_once(api, versioned, url, body, status, key):
    before = AuditEvent.objects.count()
    response = api.post(url, body, format="json")
    assert response.status_code == status and key in response.json()
    assert AuditEvent.objects.count() == before + 1
    assert AuditEvent.objects.order_by("-id").first().outcome == "refused"


def test_restore_of_an_unknown_agent_is_a_404_and_audited(api, versioned):
    response = api.post("/api/agents/gone/versions/1/restore/", {}, format="json")
    assert response.status_code == 404
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.agent_slug, event.action, event.outcome) == ("gone", "restore_version", "refused")


def test_runs_show_the_version_they_ran_with(api, versioned):
    queued = services.agent_run_once(agent=versioned, actor=Actor.cli(), enqueue=False)
    run = execution.run_queued(queued.pk)
    assert api.get(f"/api/runs/{run.pk}/").json()["config_version"] == 3
    assert api.get("/api/runs/").json()["results"][0]["config_version"] == 3
