"""Calendar schedules and run policies over HTTP: configuration, preview, run-once, backfill."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from runner.models import AuditEvent, CycleRun

pytestmark = pytest.mark.django_db

NEW_YORK_HOURS = [{"days": "mon-fri", "start": "13:30", "end": "20:00"}]


def test_an_agent_is_configured_with_a_cron_schedule_and_policies(api, agent):
    body = {
        "schedule_kind": "cron",
        "cron": "*/30 * * * mon-fri",
        "timezone": "America/New_York",
        "jitter_seconds": 20,
        "active_windows": NEW_YORK_HOURS,
        "overlap_policy": "buffer_one",
        "catchup_policy": "window",
        "catchup_window_minutes": 90,
        "retry_attempts": 3,
        "retry_backoff_seconds": 15,
        "retry_on": "failed",
    }
    answer = api.patch(f"/api/agents/{agent.slug}/", body, format="json")
    assert answer.status_code == 200, answer.json()
    shown = answer.json()
    assert {name: shown[name] for name in body} == {
        **body,
        "active_windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "13:30", "end": "20:00"}
        ],
    }
    event = AuditEvent.objects.get(agent=agent, action="configure")
    assert event.changes["cron"] == {"before": "", "after": "*/30 * * * mon-fri"}
    assert event.changes["overlap_policy"] == {"before": "skip", "after": "buffer_one"}


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"schedule_kind": "cron", "cron": "61 * * * *"}, "cron", "five-field"),
        ({"timezone": "Moon/Base"}, "timezone", "IANA"),
        (
            {"active_windows": [{"days": "sat", "start": "20:00", "end": "08:00"}]},
            "active_windows",
            "never opens",
        ),
        ({"jitter_seconds": -1}, "jitter_seconds", "0 to 3600"),
        ({"retry_attempts": 11}, "retry_attempts", "0 to 10"),
        ({"overlap_policy": "pile_up"}, "overlap_policy", "not a valid choice"),
        ({"retry_on": "failed,crashed"}, "retry_on", "comma-separated"),
    ],
)
def test_bad_schedule_settings_are_a_400_naming_the_field(api, agent, body, field, fragment):
    answer = api.patch(f"/api/agents/{agent.slug}/", body, format="json")
    assert answer.status_code == 400
    assert fragment in " ".join(answer.json()[field])
    assert AuditEvent.objects.get(agent=agent).outcome == "refused"
    agent.refresh_from_db()
    assert agent.schedule_kind == "interval" and agent.timezone == "UTC"


def test_the_schedule_preview_lists_fire_times_in_utc_and_in_the_agents_zone(api, agent):
    api.patch(
        f"/api/agents/{agent.slug}/",
        {"schedule_kind": "cron", "cron": "0 9 * * *", "timezone": "Europe/London"},
        format="json",
    )
    answer = api.get(f"/api/agents/{agent.slug}/schedule/?count=3")
    assert answer.status_code == 200
    data = answer.json()
    assert data["timezone"] == "Europe/London" and len(data["fire_times"]) == 3
    for row in data["fire_times"]:
        utc = parse_datetime(row["fires_at"])
        local = parse_datetime(row["fires_at_local"])
        assert utc == local and local.hour == 9 and local.minute == 0
    days = [parse_datetime(row["fires_at"]) for row in data["fire_times"]]
    assert days[1] - days[0] in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
    assert len(api.get(f"/api/agents/{agent.slug}/schedule/").json()["fire_times"]) == 5


@pytest.mark.parametrize("query", ["count=0", "count=101", "count=five", "count=", "every=2"])
def test_a_bad_preview_query_is_a_400(api, agent, query):
    answer = api.get(f"/api/agents/{agent.slug}/schedule/?{query}")
    assert answer.status_code == 400
    assert set(answer.json()) <= {"count", "every"}


def test_run_once_with_parameter_overrides(api, agent):
    answer = api.post(
        f"/api/agents/{agent.slug}/run-once/",
        {"reason": "try a bigger value", "parameters": {"value": 7}},
        format="json",
    )
    assert answer.status_code == 202, answer.json()
    assert answer.json()["parameter_overrides"] == {"value": 7}
    run = CycleRun.objects.get(pk=answer.json()["id"])
    assert run.parameter_overrides == {"value": 7}
    agent.refresh_from_db()
    assert agent.parameters == {"value": 3}  # the stored configuration is unchanged


@pytest.mark.parametrize("parameters", [{"value": "x"}, [1], "value"])
def test_run_once_with_overrides_the_kind_refuses_is_a_400(api, agent, parameters):
    answer = api.post(
        f"/api/agents/{agent.slug}/run-once/", {"parameters": parameters}, format="json"
    )
    assert answer.status_code == 400 and "parameters" in answer.json()
    assert AuditEvent.objects.filter(agent=agent, outcome="refused").count() == 1
    assert not CycleRun.objects.filter(agent=agent).exists()


def test_run_once_overrides_from_a_form(api, agent):
    answer = api.post(f"/api/agents/{agent.slug}/run-once/", {"parameters": '{"value": 3}'})
    assert answer.status_code == 202 and answer.json()["parameter_overrides"] == {"value": 3}


def test_backfill_over_http_queues_runs_and_refuses_a_future_range(api, agent):
    start = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)
    answer = api.post(
        f"/api/agents/{agent.slug}/backfill/",
        {"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat()},
        format="json",
    )
    assert answer.status_code == 202, answer.json()
    assert [row["trigger"] for row in answer.json()] == ["backfill"] * 3
    future = api.post(
        f"/api/agents/{agent.slug}/backfill/",
        {"from": start.isoformat(), "to": "2999-01-01"},
        format="json",
    )
    assert future.status_code == 400 and "to" in future.json()
    missing = api.post(f"/api/agents/{agent.slug}/backfill/", {"from": "2026-01-01"}, format="json")
    assert missing.status_code == 400 and "to" in missing.json()
    outcomes = list(
        AuditEvent.objects.filter(agent=agent, action="backfill").values_list("outcome", flat=True)
    )
    assert sorted(outcomes) == ["applied", "refused", "refused"]


def test_the_seed_run_once_takes_no_parameters(api, agent, settings):
    settings.RUNNER_DEFAULT_AGENT = agent.slug
    answer = api.post("/api/agent/run-once", {"parameters": {"value": 2}}, format="json")
    assert answer.status_code == 400
