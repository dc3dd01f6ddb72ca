"""The forecaster's output in the runner's reports, from a real cycle over the SAMPLE snapshot."""

import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from runner.models import Agent
from runner.reports import run_report
from tests.agents.factories import ForecasterAgentFactory, PaperFillFactory, PaperPositionFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_report_counts_what_a_real_default_cycle_produced():
    assert "agents.reports.forecaster_output" in settings.RUNNER_REPORT_EXTRAS
    call_command("runagent", "--once", stdout=io.StringIO())
    agent = Agent.objects.get(slug=settings.RUNNER_DEFAULT_AGENT)
    now = timezone.now()
    report = run_report(
        agent=agent, since=now - timedelta(days=1), until=now + timedelta(seconds=1)
    )
    output = report["outputs"]
    # the baseline forecaster reports the price: 20 forecasts, 20 honest "no edge" rejections
    assert output["forecasts"] == 20 and output["forecasts_failed"] == 0
    assert output["decisions_approved"] == 0 and output["decisions_rejected"] == 20
    assert output["paper_fills"] == 0 and output["paper_exposure"] == 0
    assert output["top_rejection_reasons"][0]["count"] == 20


def test_admin_report_page_lists_rejection_reasons_readably(client):
    # The page used to show top_rejection_reasons as a raw Python list of dicts.
    call_command("runagent", "--once", stdout=io.StringIO())
    agent = Agent.objects.get(slug=settings.RUNNER_DEFAULT_AGENT)
    client.force_login(UserFactory(username="viewer", perms=["runner.view_agent"]))
    page = client.get(reverse("runner-agent-report", args=[agent.pk]), {"since": "1d"})
    html = page.content.decode()
    assert "<th>top_rejection_reasons</th><td><ul>" in html
    assert "<li>no edge: the forecast equals the price (20)</li>" in html
    assert "&#x27;reason&#x27;" not in html


def test_exposure_is_the_cost_of_open_positions_of_that_agent():
    agent = ForecasterAgentFactory()
    fill = PaperFillFactory(agent=agent, cost=12.5)
    PaperPositionFactory(
        agent=agent, market_id=fill.market_id, side=fill.side, shares=25, cost=12.5
    )
    now = timezone.now()
    report = run_report(
        agent=agent, since=now - timedelta(days=1), until=now + timedelta(seconds=1)
    )
    assert report["outputs"]["paper_fills"] == 1 and report["outputs"]["paper_fill_cost"] == 12.5
    assert report["outputs"]["paper_exposure"] == 12.5
    other = run_report(agent=ForecasterAgentFactory(), since=now - timedelta(days=1), until=now)
    assert other["outputs"]["paper_exposure"] == 0
