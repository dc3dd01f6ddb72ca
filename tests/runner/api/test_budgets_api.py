"""Budgets on the agent resource: edited like any configuration (audited, versioned), refused
with a 400 naming the field and the allowed range, and shown against usage in the status."""

import pytest

from runner import execution, services
from runner.actors import Actor
from runner.models import Agent, AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("midday_zone")]


@pytest.fixture(autouse=True)
def prices(settings):
    settings.RUNNER_LLM_PRICES = {"small-model": {"prompt": 0.15, "completion": 0.6}}


def test_budgets_are_edited_like_any_configuration(api, agent):
    budgets = {"cycles_per_day": 24, "llm_cost_per_day": 2.5, "llm_model": "small-model"}
    response = api.patch("/api/agents/alpha/", {"budgets": budgets}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["budgets"] == {**budgets, "llm_cost_per_day": 2.5}
    event = AuditEvent.objects.get(action="configure")
    assert event.changes == {"budgets": {"before": {}, "after": budgets}}
    [version] = api.get("/api/agents/alpha/versions/").json()["results"]
    assert version["config"]["budgets"] == budgets and version["action"] == "configure"


@pytest.mark.parametrize(
    ("budgets", "words"),
    [
        ({"cycles_per_day": -3}, "cycles_per_day must be a whole number from 1 to 1e+06 (cycles)"),
        ({"llm_tokens_per_day": "many"}, "llm_tokens_per_day must be a whole number from 1"),
        ({"paper_loss_per_day": -1.5}, "paper_loss_per_day must be a number from 0.01 to 1e+12"),
        (
            {"llm_cost_per_day": 1, "llm_model": "gpt-x"},
            "llm_model must be a model priced in RUNNER_LLM_PRICES (small-model); got 'gpt-x'.",
        ),
        ("daily", "budgets must be a JSON object"),
    ],
)
def test_bad_budgets_are_a_400_naming_the_field_and_change_nothing(api, agent, budgets, words):
    response = api.patch("/api/agents/alpha/", {"budgets": budgets}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["budgets"] and any(words in message for message in body["budgets"])
    assert Agent.objects.get(slug="alpha").budgets == {}
    event = AuditEvent.objects.get()
    assert (event.action, event.outcome) == ("configure", "refused")


def test_a_new_agent_with_bad_budgets_is_refused_too(api):
    response = api.post(
        "/api/agents/",
        {"slug": "new", "kind": "test-ok", "budgets": {"paper_exposure": "lots"}},
        format="json",
    )
    assert response.status_code == 400 and list(response.json()) == ["budgets"]
    assert not Agent.objects.filter(slug="new").exists()


def test_the_status_shows_each_budget_against_what_was_used_today(api, agent):
    services.agent_update_config(
        agent=agent, values={"budgets": {"cycles_per_day": 3}}, actor=Actor.cli()
    )
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    execution.run_queued(queued.pk)
    [line] = api.get("/api/agents/alpha/status/").json()["budgets"]
    assert {k: line[k] for k in ("budget", "unit", "limit", "used", "left", "exhausted")} == {
        "budget": "cycles_per_day",
        "unit": "cycles",
        "limit": 3.0,
        "used": 1.0,
        "left": 2.0,
        "exhausted": False,
    }
    assert line["resets_at"].endswith(("Z", "+00:00"))
    assert api.get("/api/agents/").json()[0]["budgets"] == {"cycles_per_day": 3}
