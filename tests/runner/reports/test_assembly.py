"""`run_report()`: every section against numbers worked out by hand, and the output hooks."""

from datetime import timedelta

import pytest

from runner import reports
from tests.factories import AgentFactory, CycleRunFactory
from tests.runner.report_data import EXPECTED_ALPHA, SINCE, UNTIL, make_history

pytestmark = pytest.mark.django_db


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
    assert report["runs"]["by_trigger"] == {"schedule": 5, "manual": 4, "cli": 1, "backfill": 0}
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


def test_report_hooks_are_merged_and_a_broken_hook_is_reported(settings):
    settings.RUNNER_REPORT_EXTRAS = [
        "tests.runner.reports.test_assembly.hook_counts",
        "tests.runner.reports.test_assembly.hook_broken",
    ]
    alpha, _ = make_history()
    report = reports.run_report(agent=alpha, since=SINCE, until=UNTIL)
    assert report["outputs"] == {"hook_agent": "alpha", "hook_days": 3}
    assert report["output_errors"] == {
        "tests.runner.reports.test_assembly.hook_broken": "RuntimeError: source offline"
    }


def hook_counts(agent, since, until):
    return {"hook_agent": agent.slug if agent else None, "hook_days": (until - since).days}


def hook_broken(agent, since, until):
    raise RuntimeError("source offline")


def test_the_package_keeps_the_names_callers_imported_from_runner_reports():
    from runner.reports import (  # noqa: F401  (importable is the assertion)
        BUCKETS,
        DEFAULT_BUCKET,
        DEFAULT_SINCE,
        parse_bucket,
        parse_duration,
        parse_window,
        percentiles,
        percentiles_by_offset,
        run_report,
        run_report_from_params,
    )

    assert set(reports.__all__) <= set(dir(reports))
