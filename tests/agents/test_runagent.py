"""`manage.py runagent --once --json` on the default agent prints a real forecaster summary."""

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from agents.models import Forecast
from runner.models import Agent


@pytest.mark.django_db
def test_runagent_once_json_on_the_default_agent_in_process():
    # The migration leaves this agent in place; a flush by an earlier transactional test may not.
    Agent.objects.get_or_create(
        slug=settings.RUNNER_DEFAULT_AGENT,
        defaults={"name": "Default forecaster", "kind": "forecaster", "parameters": {}},
    )
    out = StringIO()
    call_command("runagent", "--once", "--json", stdout=out)
    run = json.loads(out.getvalue())
    assert run["agent"] == settings.RUNNER_DEFAULT_AGENT and run["status"] == "succeeded"
    assert run["error"] is None
    summary = run["summary"]
    assert summary["source"] == "snapshot" and summary["sample_data"] is True
    assert summary["markets_loaded"] == 240 and summary["forecasts"] == 20
    assert Forecast.objects.filter(run_id=run["id"]).count() == 20
