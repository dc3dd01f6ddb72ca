"""Forecast scores where operators read them: the API report, the admin report page (with a
reliability diagram drawn inline, no CDN) and its CSV download."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from runner.models import Agent
from tests.factories import UserFactory
from tests.runner.api.conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(settings):
    settings.MARKET_SOURCE = "snapshot"
    call_command("runagent", "--once", stdout=StringIO())
    call_command("resolvemarkets", "--sample", stdout=StringIO())
    return Agent.objects.get(slug="default")


def test_the_api_report_carries_the_scores(scored):
    client = token_client(UserFactory(username="reader", perms=["runner.view_agent"]))
    outputs = client.get("/api/agents/default/report/?since=1d").json()["outputs"]
    [scores] = outputs["forecast_scores"]
    assert scores["brier"] == scores["market_brier"]
    assert {row["bucket"] for row in outputs["forecast_calibration"]} <= {
        f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)
    }
    all_agents = client.get("/api/reports/?since=1d").json()["outputs"]
    assert all_agents["forecast_scores"] == outputs["forecast_scores"]


def test_the_admin_report_shows_scores_and_a_reliability_diagram(admin_client, scored):
    url = reverse("runner-agent-report", kwargs={"agent_id": scored.pk})
    html = admin_client.get(url + "?since=1d").content.decode()
    assert 'id="forecast-scores"' in html and "Brier skill vs market" in html
    assert 'id="scores-notice"' in html and "SAMPLE resolutions" in html
    chart = html[html.index('id="reliability-chart"') :]
    chart = chart[: chart.index("</figure>")]
    assert "<svg" in chart and 'aria-label="Reliability diagram' in chart
    assert chart.count('class="forecast-point"') == chart.count('class="market-point"') > 0
    # Drawn by the server: no script, nothing fetched from elsewhere.
    assert "<script" not in chart and "http" not in chart.replace('xmlns="http://www.w3.org', "")
    csv_text = admin_client.get(url + "?since=1d&format=csv").content.decode()
    assert "outputs,forecast_scores.default/baseline,brier," in csv_text
    assert "outputs,forecast_calibration.default/baseline/" in csv_text
