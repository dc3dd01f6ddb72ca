"""The API, the admin page, the CSV download and `runreport` all show the service's numbers."""

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from runner.models import Agent
from runner.reports.formats import report_rows
from tests.factories import AgentFactory, UserFactory
from tests.runner.report_data import EXPECTED_ALPHA, make_history

pytestmark = pytest.mark.django_db

WINDOW = {"since": "2026-01-05", "until": "2026-01-08T00:00:00Z", "bucket": "day"}


@pytest.fixture
def viewer():
    return UserFactory(username="viewer", perms=["runner.view_agent"])


@pytest.fixture
def api(viewer):
    client = APIClient()
    client.force_authenticate(viewer)
    return client


def test_api_agent_report_equals_the_service(api):
    make_history()
    response = api.get("/api/agents/alpha/report/", WINDOW)
    assert response.status_code == 200
    assert response.json() == EXPECTED_ALPHA


def test_api_all_agents_report(api):
    make_history()
    response = api.get("/api/reports/", WINDOW)
    assert response.status_code == 200
    body = response.json()
    assert body["agent"] is None
    assert body["runs"]["total"] == 10
    assert [row["agent"] for row in body["agents"]] == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "7x"}, "since"),
        ({"since": "1d", "until": "2d"}, "until"),
        ({"until": "tomorrow-ish"}, "until"),
        ({"bucket": "month"}, "bucket"),
        ({"since": "400d", "bucket": "hour"}, "bucket"),
    ],
)
def test_api_bad_params_are_400_naming_the_parameter(api, params, field):
    make_history()
    response = api.get("/api/agents/alpha/report/", params)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert field in response.json()[field][0]
    assert api.get("/api/reports/", params).status_code == 400


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bucket": ""}, "bucket"),
        ({"since": ""}, "since"),
        ({"until": ""}, "until"),
        ({"sinse": "7d"}, "sinse"),
        ({"since": "0"}, "since"),
    ],
)
def test_api_empty_or_unknown_params_are_400_naming_them(api, params, field):
    # `?bucket=` used to mean the default bucket although the schema lists only hour/day/week.
    make_history()
    for path in ("/api/agents/alpha/report/", "/api/reports/"):
        response = api.get(path, params)
        assert response.status_code == 400
        assert list(response.json()) == [field]


def test_api_schema_documents_the_error_answers(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    agent_report = schema["paths"]["/api/agents/{slug}/report/"]["get"]["responses"]
    assert {"400", "401", "403", "404"} <= set(agent_report)
    assert {"400", "401", "403"} <= set(schema["paths"]["/api/reports/"]["get"]["responses"])


def test_api_needs_login_and_view_permission():
    make_history()
    assert APIClient().get("/api/reports/").status_code in (401, 403)
    client = APIClient()
    client.force_authenticate(UserFactory(username="nobody"))
    assert client.get("/api/reports/").status_code == 403
    assert client.get("/api/agents/alpha/report/").status_code == 403


def test_api_unknown_agent_is_404(api):
    assert api.get("/api/agents/nope/report/").status_code == 404


def test_admin_page_shows_the_same_numbers_and_charts(client, viewer):
    alpha, _ = make_history()
    client.force_login(viewer)
    url = reverse("runner-agent-report", args=[alpha.pk])
    assert url == f"/admin/runner/agent/{alpha.pk}/report/"
    response = client.get(url, WINDOW)
    assert response.status_code == 200
    page = response.content.decode()
    report = response.context["report"]
    assert report == EXPECTED_ALPHA
    assert '<td id="runs-total">9</td>' in page
    assert '<td id="success-rate">42.9%</td>' in page
    assert '<td id="longest-streak">2</td>' in page
    assert "41403.0 s" in page and "5393.5 s" in page
    assert "<td>3000.0</td><td>7800.0</td><td>9000.0</td>" in page
    assert page.count('<figure class="report-chart"><svg') == 2
    assert page.count('<g class="bucket">') == 3
    assert "2026-01-05T00:00:00Z: 4 runs, 2 failures" in page
    # The report itself needs no script and loads nothing from elsewhere (only the SVG namespace).
    content = page[page.index('<div id="content-main" class="agent-report">') :]
    content = (
        content[: content.index("<!-- END Content -->")]
        if "<!-- END Content -->" in content
        else content
    )
    assert "<script" not in content
    assert "https://" not in content and "http://" not in content.replace("http://www.w3.org", "")
    assert "bad 2" in page and "alice" in page
    assert "format=csv" in page


def reasons_hook(agent, since, until):
    """Output shaped like the forecaster's: a count and a list of reasons with their counts."""
    return {
        "forecasts": 20,
        "top_rejection_reasons": [
            {"reason": "no edge: the forecast equals the price", "count": 18},
            {"reason": "kelly stake leaves no room: 0.00 USD", "count": 2},
        ],
    }


def test_admin_page_shows_listed_outputs_one_readable_line_each(client, viewer, settings):
    # The page used to print the list as Python shows it: [{'reason': ..., 'count': 18}, ...].
    settings.RUNNER_REPORT_EXTRAS = ["tests.runner.test_report_surfaces.reasons_hook"]
    alpha, _ = make_history()
    client.force_login(viewer)
    response = client.get(reverse("runner-agent-report", args=[alpha.pk]), WINDOW)
    page = response.content.decode()
    assert response.context["report"]["outputs"]["top_rejection_reasons"][0]["count"] == 18
    assert "<tr><th>forecasts</th><td>20</td></tr>" in page
    assert "<li>no edge: the forecast equals the price (18)</li>" in page
    assert "<li>kelly stake leaves no room: 0.00 USD (2)</li>" in page
    assert "[{" not in page and "&#x27;reason&#x27;" not in page


def test_admin_csv_download_holds_the_same_rows(client, viewer):
    alpha, _ = make_history()
    client.force_login(viewer)
    url = reverse("runner-agent-report", args=[alpha.pk])
    response = client.get(url, {**WINDOW, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "item", "metric", "value"]
    expected = [
        [str(c) if c is not None else "" for c in row] for row in report_rows(EXPECTED_ALPHA)
    ]
    assert rows[1:] == expected
    assert ["runs", "by_status", "succeeded", "3"] in rows
    assert ["duration_ms", "", "p95", "7800.0"] in rows
    assert ["buckets", "2026-01-05T00:00:00Z", "failures", "2"] in rows


def test_admin_page_bad_window_is_400_with_message(client, viewer):
    alpha, _ = make_history()
    client.force_login(viewer)
    response = client.get(reverse("runner-agent-report", args=[alpha.pk]), {"since": "7x"})
    assert response.status_code == 400
    assert "since must be" in response.content.decode()


def test_admin_page_permissions(client):
    alpha, _ = make_history()
    url = reverse("runner-agent-report", args=[alpha.pk])
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(UserFactory(username="staff-without-perm"))
    assert client.get(url).status_code == 403
    client.force_login(UserFactory(username="v2", perms=["runner.view_agent"]))
    assert client.get(reverse("runner-agent-report", args=[999999])).status_code == 404


def test_runreport_json_equals_the_service(capsys):
    make_history()
    call_command(
        "runreport",
        "--agent",
        "alpha",
        "--since",
        WINDOW["since"],
        "--until",
        WINDOW["until"],
        "--format",
        "json",
    )
    assert json.loads(capsys.readouterr().out) == EXPECTED_ALPHA


def test_runreport_csv_and_table(capsys):
    make_history()
    args = ["--agent", "alpha", "--since", WINDOW["since"], "--until", WINDOW["until"]]
    call_command("runreport", *args, "--format", "csv")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert ["runs", "", "success_rate", "0.4286"] in rows
    call_command("runreport", *args)
    table = capsys.readouterr().out
    assert "Runs: 9  finished: 7  failures: 3  success rate: 42.9%" in table
    assert "Longest failure streak: 2  MTBF: 41,403.0 s  MTTR: 5,393.5 s (2 recoveries)" in table
    assert "ValueError" in table and "bad 2" in table
    call_command("runreport", "--since", WINDOW["since"], "--until", WINDOW["until"])
    assert "Per agent:" in capsys.readouterr().out


def test_runreport_table_gives_every_success_rate_as_a_percentage(capsys):
    # The summary line said 37.5% while the per-agent table said 0.4 (alpha's 42.9%).
    make_history()
    call_command("runreport", "--since", WINDOW["since"], "--until", WINDOW["until"])
    table = capsys.readouterr().out
    assert "success rate: 37.5%" in table
    per_agent = table[table.index("Per agent:") : table.index("Agent output:")]
    assert re.search(r"alpha +9 +3 +3 +42\.9%\n", per_agent)
    assert re.search(r"beta +1 +0 +1 +0\.0%\n", per_agent)
    call_command(
        "runreport", "--since", WINDOW["since"], "--until", WINDOW["until"], "--format", "csv"
    )
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert ["runs", "", "success_rate", "0.375"] in rows  # CSV stays a fraction, everywhere
    assert ["agents", "alpha", "success_rate", "0.4286"] in rows


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--since", "7x"], "since must be"),
        (["--since", "1d", "--until", "2d"], "until must be after since"),
        (["--bucket", "month"], "bucket must be one of"),
        (["--agent", "nope"], "No agent with slug 'nope'"),
    ],
)
def test_runreport_bad_input_exits_1(args, words):
    with pytest.raises(CommandError) as caught:
        call_command("runreport", *args)
    assert words in str(caught.value)
    assert caught.value.returncode == 1


def test_after_real_cycles_admin_api_and_command_agree(client, api, viewer, capsys):
    """Cycles run through `runagent` like a user's; every surface then shows one report."""
    agent = AgentFactory(slug="mixed", kind="test-ok")
    outcomes = []
    for kind in ("test-ok", "test-fail", "test-fail", "test-ok"):
        Agent.objects.filter(pk=agent.pk).update(kind=kind)  # test setup: swap the agent's code
        try:
            call_command("runagent", "--once", "--agent", "mixed", "--json")
            outcomes.append("ok")
        except CommandError:
            outcomes.append("failed")
    capsys.readouterr()
    assert outcomes == ["ok", "failed", "failed", "ok"]

    now = timezone.now()
    window = {
        "since": (now - timedelta(hours=1)).isoformat(),
        "until": (now + timedelta(minutes=1)).isoformat(),
        "bucket": "hour",
    }
    from_api = api.get("/api/agents/mixed/report/", window).json()
    call_command(
        "runreport",
        "--agent",
        "mixed",
        "--format",
        "json",
        "--since",
        window["since"],
        "--until",
        window["until"],
        "--bucket",
        "hour",
    )
    from_command = json.loads(capsys.readouterr().out)
    client.force_login(viewer)
    page = client.get(reverse("runner-agent-report", args=[agent.pk]), window)
    assert from_api == from_command == page.context["report"]

    assert from_api["runs"]["total"] == 4
    assert from_api["runs"]["by_status"]["succeeded"] == 2
    assert from_api["runs"]["by_trigger"]["cli"] == 4
    assert from_api["runs"]["success_rate"] == 0.5
    assert from_api["duration_ms"]["count"] == 4
    assert from_api["reliability"]["longest_failure_streak"] == 2
    assert from_api["reliability"]["recoveries"] == 1
    [failure] = from_api["failures_by_type"]
    assert failure["error_type"].endswith("BoomError") and failure["count"] == 2
    assert failure["latest_message"] == "the agent exploded on purpose"
    [actor] = from_api["control_actions"]["by_actor_source"]
    assert actor["source"] == "cli" and actor["count"] == 4
    assert from_api["control_actions"]["by_action"] == {"run_once": 4}
    assert '<td id="runs-total">4</td>' in page.content.decode()
