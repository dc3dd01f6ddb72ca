from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.agents.factories import (
    ForecasterAgentFactory,
    ForecastFactory,
    MarketObservationFactory,
    PaperFillFactory,
    TradeDecisionFactory,
)
from tests.factories import CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    client = APIClient()
    client.force_authenticate(UserFactory(perms=["runner.view_agent"]))
    return client


def test_anonymous_and_unprivileged_users_are_refused():
    assert APIClient().get("/api/forecasts/").status_code in (401, 403)
    client = APIClient()
    client.force_authenticate(UserFactory(perms=[]))
    response = client.get("/api/decisions/")
    assert response.status_code == 403
    assert "runner.view_agent" in response.json()["detail"]


def test_the_models_own_view_permission_is_enough():
    ForecastFactory()
    client = APIClient()
    client.force_authenticate(UserFactory(perms=["agents.view_forecast"]))
    assert client.get("/api/forecasts/").status_code == 200
    assert client.get("/api/decisions/").status_code == 403


def test_token_authentication_works():
    user = UserFactory(perms=["runner.view_agent"])
    token = Token.objects.create(user=user)
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/forecasts/").status_code == 200


def test_forecasts_newest_first_with_market_and_sample_flag(viewer):
    now = timezone.now()
    old = ForecastFactory(created_at=now - timedelta(hours=1))
    new = ForecastFactory(created_at=now, forecaster="llm", total_tokens=150)
    body = viewer.get("/api/forecasts/").json()
    assert body["count"] == 2
    assert [f["id"] for f in body["results"]] == [new.pk, old.pk]
    first = body["results"][0]
    assert first["forecaster"] == "llm" and first["total_tokens"] == 150
    assert first["agent"] == new.agent.slug and first["run"] == new.run_id
    assert first["market"]["is_sample"] is True
    assert first["market"]["question"].startswith("[SAMPLE]")


def test_filter_by_run_and_agent(viewer):
    agent = ForecasterAgentFactory()
    run_a, run_b = CycleRunFactory(agent=agent), CycleRunFactory(agent=agent)
    for run in (run_a, run_a, run_b):
        ForecastFactory(market=MarketObservationFactory(run=run, agent=agent))
    ForecastFactory()  # another agent
    assert viewer.get("/api/forecasts/", {"run": run_a.pk}).json()["count"] == 2
    assert viewer.get("/api/forecasts/", {"agent": agent.slug}).json()["count"] == 3
    assert (
        viewer.get("/api/forecasts/", {"agent": agent.slug, "run": run_b.pk}).json()["count"] == 1
    )
    assert viewer.get("/api/forecasts/", {"agent": "nobody"}).json()["count"] == 0


def test_bad_filter_and_page_values_are_client_errors(viewer):
    ForecastFactory()
    response = viewer.get("/api/forecasts/", {"run": "abc"})
    assert response.status_code == 400 and "run" in response.json()
    assert viewer.get("/api/decisions/", {"approved": "maybe"}).status_code == 400
    assert viewer.get("/api/forecasts/", {"page": 99}).status_code == 404


def test_pagination(viewer):
    market = MarketObservationFactory()
    for _ in range(3):
        ForecastFactory(market=market)
    body = viewer.get("/api/forecasts/", {"page_size": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def test_decisions_show_edge_size_reason_and_fill(viewer):
    rejected = TradeDecisionFactory()
    fill = PaperFillFactory()
    body = viewer.get("/api/decisions/").json()
    by_id = {d["id"]: d for d in body["results"]}
    assert by_id[rejected.pk]["approved"] is False
    assert by_id[rejected.pk]["reason"] == "no edge: the forecast equals the price"
    assert by_id[rejected.pk]["fill"] is None
    approved = by_id[fill.decision_id]
    assert approved["approved"] is True and approved["size"] == 100.0 and approved["edge"] == 0.2
    assert approved["fill"]["shares"] == 250.0 and approved["fill"]["price"] == 0.4
    only = viewer.get("/api/decisions/", {"approved": "true"}).json()
    assert [d["id"] for d in only["results"]] == [fill.decision_id]
    detail = viewer.get(f"/api/decisions/{fill.decision_id}/")
    assert detail.status_code == 200 and detail.json()["id"] == fill.decision_id


def test_records_are_read_only_over_the_api(viewer):
    forecast = ForecastFactory()
    assert viewer.post("/api/forecasts/", {}).status_code == 405
    assert viewer.delete(f"/api/forecasts/{forecast.pk}/").status_code == 405
    assert viewer.patch(f"/api/decisions/{TradeDecisionFactory().pk}/", {}).status_code == 405


@pytest.mark.parametrize("path", ["/api/forecasts/", "/api/decisions/"])
@pytest.mark.parametrize("run", ["9.2e18", "9223372036854775808", "0", "-1", ""])
def test_run_filter_outside_the_id_range_is_400_naming_run(viewer, path, run):
    # 9.2e18 once reached SQLite as a too-large integer: a 500 instead of a 400.
    response = viewer.get(path, {"run": run})
    assert response.status_code == 400
    assert list(response.json()) == ["run"]


def test_run_filter_accepts_the_largest_id(viewer):
    ForecastFactory()
    response = viewer.get("/api/forecasts/", {"run": 2**63 - 1})
    assert response.status_code == 200 and response.json()["count"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "last"}, "page"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"approved": ""}, "approved"),
        ({"side": "sideways"}, "side"),
        ({"": "false"}, "(empty name)"),
        ({"runn": "1"}, "runn"),
    ],
)
def test_bad_page_and_query_parameters_are_400_naming_them(viewer, params, field):
    # Before, ?page=0 was an undocumented 404, and ?page_size=ten, ?approved= and unknown
    # parameters were ignored: the whole list came back as if the filter had worked.
    TradeDecisionFactory()
    response = viewer.get("/api/decisions/", params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_schema_documents_the_error_answers():
    schema = _schema()
    for path in ("/api/forecasts/", "/api/decisions/"):
        assert {"400", "401", "403", "404"} <= set(schema["paths"][path]["get"]["responses"])
        detail = schema["paths"][f"{path}{{id}}/"]["get"]["responses"]
        assert {"401", "403", "404"} <= set(detail)


def _schema():
    client = APIClient()
    client.force_authenticate(UserFactory(perms=["runner.view_agent"]))
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
