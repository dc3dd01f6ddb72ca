"""The README's demonstration on a fresh database: one cycle over the SAMPLE snapshot, the SAMPLE
resolutions applied, then the score in `runreport`. The honest result: the baseline forecaster
(probability = the market price) scores exactly the market price's Brier score and log loss."""

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command

from agents.models import Forecast
from agents.resolutions import SAMPLE_RESOLUTIONS_PATH

pytestmark = pytest.mark.django_db


def command(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_runagent_then_resolvemarkets_then_runreport(settings):
    settings.MARKET_SOURCE = "snapshot"
    command("runagent", "--once")
    assert "186 recorded" in command("resolvemarkets", "--sample")

    resolved_ids = {m["id"] for m in json.loads(SAMPLE_RESOLUTIONS_PATH.read_text())["markets"]}
    forecast_ids = set(Forecast.objects.values_list("market__market_id", flat=True))
    expected = len(forecast_ids & resolved_ids)
    assert 0 < expected < len(forecast_ids) == 20  # some of the 20 markets stay unresolved

    report = json.loads(
        command("runreport", "--agent", "default", "--since", "1d", "--format", "json")
    )
    [scores] = report["outputs"]["forecast_scores"]
    assert (scores["agent"], scores["forecaster"], scores["resolved_forecasts"]) == (
        "default",
        "baseline",
        expected,
    )
    assert scores["brier"] == scores["market_brier"] and 0 < scores["brier"] < 0.25
    assert scores["log_loss"] == scores["market_log_loss"] and scores["brier_skill"] == 0.0
    for bucket in report["outputs"]["forecast_calibration"]:
        assert bucket["forecasts"] == bucket["market_forecasts"]
        assert bucket["mean_forecast"] == bucket["market_mean_price"]
    assert "SAMPLE resolutions" in report["outputs"]["forecast_scores_notice"]

    table = command("runreport", "--agent", "default", "--since", "1d")
    assert (
        "forecast_scores:" in table and "market_brier" in table and "forecast_calibration:" in table
    )
    rows = list(
        csv.reader(
            StringIO(command("runreport", "--agent", "default", "--since", "1d", "--format", "csv"))
        )
    )
    assert ["outputs", "forecast_scores.default/baseline", "brier", str(scores["brier"])] in rows
    assert any(row[1].startswith("forecast_calibration.default/baseline/") for row in rows)
