from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F, FloatField
from django.db.models.functions import Cast
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import reports
from runner.errors import InvalidInput
from runner.models import CycleRun
from tests.factories import AgentFactory, CycleRunFactory
from tests.runner.report_data import EXPECTED_ALPHA, SINCE, UNTIL, make_history

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_agent_report_matches_hand_computed_numbers():
    alpha, _ = make_history()
    report = reports.run_report(agent=alpha, since=SINCE, until=UNTIL, bucket="day")
    assert report == EXPECTED_ALPHA


def test_all_agents_report_adds_the_other_agent_and_a_breakdown():
    make_history()
    report = reports.run_report(since=SINCE, until=UNTIL, bucket="day")
    assert report["agent"] is None
    assert report["runs"]["total"] == 10
    assert report["runs"]["failures"] == 4
    assert report["runs"]["by_trigger"] == {"schedule": 5, "manual": 4, "cli": 1}
    assert report["runs"]["success_rate"] == round(3 / 8, 4)
    # beta's single failure adds no gap (MTBF is per agent) and no recovery.
    assert report["reliability"] == EXPECTED_ALPHA["reliability"]
    assert report["buckets"][0] == {"start": "2026-01-05T00:00:00Z", "runs": 5, "failures": 3}
    assert report["failures_by_type"][1] == {
        "error_type": "KeyError",
        "status": "failed",
        "count": 1,
        "latest_at": "2026-01-05T05:00:00Z",
        "latest_message": "'price'",
    }
    assert report["control_actions"]["total"] == 5
    assert report["agents"] == [
        {
            "agent": "alpha",
            "runs": 9,
            "succeeded": 3,
            "failures": 3,
            "success_rate": 0.4286,
            "last_queued_at": "2026-01-07T03:00:00Z",
        },
        {
            "agent": "beta",
            "runs": 1,
            "succeeded": 0,
            "failures": 1,
            "success_rate": 0.0,
            "last_queued_at": "2026-01-05T05:00:00Z",
        },
    ]


def test_hour_and_week_buckets():
    alpha, _ = make_history()
    hourly = reports.run_report(agent=alpha, since=SINCE, until=SINCE + timedelta(hours=4))
    assert hourly["buckets"][0]["start"] == "2026-01-05T00:00:00Z"
    hourly = reports.run_report(
        agent=alpha, since=SINCE, until=SINCE + timedelta(hours=4), bucket="hour"
    )
    assert [(b["runs"], b["failures"]) for b in hourly["buckets"]] == [
        (0, 0),
        (1, 0),
        (1, 1),
        (1, 1),
    ]
    # Wednesday 2026-01-07 to the next Wednesday: two weeks starting on Mondays 5th and 12th.
    # In it: the skipped, cancelled and queued runs of the 7th and the failure at 8th 00:00.
    weekly = reports.run_report(
        agent=alpha, since=SINCE + timedelta(days=2), until=SINCE + timedelta(days=9), bucket="week"
    )
    assert weekly["buckets"] == [
        {"start": "2026-01-05T00:00:00Z", "runs": 4, "failures": 1},
        {"start": "2026-01-12T00:00:00Z", "runs": 0, "failures": 0},
    ]


def test_empty_window_gives_zeros_and_nulls_not_errors():
    agent = AgentFactory()
    report = reports.run_report(agent=agent, since=SINCE, until=UNTIL)
    assert report["runs"]["total"] == 0
    assert report["runs"]["success_rate"] is None
    assert report["duration_ms"] == {"count": 0, "median": None, "p95": None, "max": None}
    assert report["start_delay_ms"] == {"count": 0, "median": None, "p95": None}
    assert report["reliability"] == {
        "longest_failure_streak": 0,
        "mtbf_seconds": None,
        "mttr_seconds": None,
        "recoveries": 0,
    }
    assert [b["runs"] for b in report["buckets"]] == [0, 0, 0]


def test_unrecovered_streak_counts_as_longest_but_not_as_recovery():
    agent = AgentFactory()
    for i, status in enumerate(["succeeded", "failed", "cancelled", "failed", "failed"]):
        at = SINCE + timedelta(minutes=10 * i)
        CycleRunFactory(agent=agent, queued_at=at, status=status, duration_ms=10)
    rel = reports.run_report(agent=agent, since=SINCE, until=UNTIL)["reliability"]
    # The cancelled run neither breaks nor extends the streak.
    assert rel["longest_failure_streak"] == 3
    assert rel["recoveries"] == 0 and rel["mttr_seconds"] is None
    assert rel["mtbf_seconds"] == 30 * 60 / 2  # failures at 10, 30 and 40 minutes


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=40))
def test_percentiles_match_linear_interpolation(values):
    agent = AgentFactory()  # a fresh agent per example, so examples never see each other's runs
    CycleRun.objects.bulk_create(
        CycleRun(agent=agent, trigger="cli", status="succeeded", queued_at=NOW, duration_ms=v)
        for v in values
    )
    ordered = sorted(values)
    expected = []
    for fraction in (0.0, 0.5, 0.95, 1.0):
        position = fraction * (len(ordered) - 1)
        low, high = int(position), min(int(position) + 1, len(ordered) - 1)
        expected.append(ordered[low] + (position - low) * (ordered[high] - ordered[low]))
    expression = Cast(F("duration_ms"), FloatField())
    runs = CycleRun.objects.filter(agent=agent)
    by_database = reports.percentiles(runs, expression, [0.0, 0.5, 0.95, 1.0])
    by_offset = reports.percentiles_by_offset(runs, expression, [0.0, 0.5, 0.95, 1.0])
    assert by_database == pytest.approx(expected)
    assert by_offset == pytest.approx(expected)


def test_report_hooks_are_merged_and_a_broken_hook_is_reported(settings):
    settings.RUNNER_REPORT_EXTRAS = [
        "tests.runner.test_reports.hook_counts",
        "tests.runner.test_reports.hook_broken",
    ]
    alpha, _ = make_history()
    report = reports.run_report(agent=alpha, since=SINCE, until=UNTIL)
    assert report["outputs"] == {"hook_agent": "alpha", "hook_days": 3}
    assert report["output_errors"] == {
        "tests.runner.test_reports.hook_broken": "RuntimeError: source offline"
    }


def hook_counts(agent, since, until):
    return {"hook_agent": agent.slug if agent else None, "hook_days": (until - since).days}


def hook_broken(agent, since, until):
    raise RuntimeError("source offline")


@pytest.mark.parametrize(
    ("since", "until", "field"),
    [
        ("7x", None, "since"),
        ("0d", None, "since"),
        ("yesterday", None, "since"),
        ("2026-13-01", None, "since"),
        ("7d", "soon", "until"),
        ("1d", "2d", "until"),  # until (2 days ago) before since (1 day ago)
        ("2026-02-01", "2026-02-01", "until"),
        ("999999999w", None, "since"),
    ],
)
def test_bad_windows_name_the_parameter(since, until, field):
    with pytest.raises(InvalidInput) as caught:
        reports.parse_window(since, until, now=NOW)
    assert caught.value.field == field
    assert field in caught.value.message


def test_window_forms():
    assert reports.parse_window(None, None, now=NOW) == (NOW - timedelta(days=7), NOW)
    assert reports.parse_window("30m", "now", now=NOW) == (NOW - timedelta(minutes=30), NOW)
    assert reports.parse_window("2w", "12h", now=NOW) == (
        NOW - timedelta(weeks=2),
        NOW - timedelta(hours=12),
    )
    assert reports.parse_window("2026-02-01", "2026-02-02T06:00:00+02:00", now=NOW) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 2, 2, 4, tzinfo=UTC),
    )


def test_bad_bucket_and_too_many_buckets_name_bucket():
    with pytest.raises(InvalidInput) as caught:
        reports.parse_bucket("month")
    assert caught.value.field == "bucket"
    with pytest.raises(InvalidInput) as caught:
        reports.run_report(since=NOW - timedelta(days=365), until=NOW, bucket="hour")
    assert caught.value.field == "bucket"
