"""Parsing what users type: windows and buckets, each refusal naming its parameter."""

from datetime import UTC, datetime, timedelta

import pytest

from runner import reports
from runner.errors import InvalidInput

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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
