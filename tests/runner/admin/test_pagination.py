"""Counting and date drill-down on big tables without a scan."""

from datetime import UTC

import pytest
from django.db import connection

from runner.admin.pagination import EstimatedCountPaginator
from runner.models import CycleRun
from tests.factories import CycleRunFactory

pytestmark = pytest.mark.django_db


def test_paginator_counts_exactly_below_the_cap():
    CycleRunFactory.create_batch(7)
    paginator = EstimatedCountPaginator(CycleRun.objects.order_by("-id"), 3)
    assert paginator.count == 7 and not paginator.estimated
    assert paginator.num_pages == 3


@pytest.mark.postgres
def test_paginator_estimates_above_the_cap_on_postgresql(monkeypatch):
    CycleRunFactory.create_batch(30)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runner_cyclerun")
    monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 10)
    paginator = EstimatedCountPaginator(CycleRun.objects.order_by("-id"), 5)
    assert paginator.estimated
    assert paginator.count >= 11  # at least what was counted; the planner's figure beyond
    filtered = EstimatedCountPaginator(CycleRun.objects.filter(status="failed"), 5)
    assert filtered.count == 0 and not filtered.estimated


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_probed_dates_match_djangos_distinct_dates(kind):
    from datetime import datetime

    from runner.admin.pagination import ProbedDatesQuerySet

    moments = [
        datetime(2024, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2025, 1, 1, 13, 0, tzinfo=UTC),
        datetime(2025, 2, 28, 8, 0, tzinfo=UTC),
        datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
        datetime(2026, 7, 4, 12, 0, tzinfo=UTC),
    ]
    for status, moment in zip(["failed", "succeeded"] * 3, moments, strict=True):
        CycleRunFactory(status=status, queued_at=moment, started_at=moment)
    CycleRunFactory(status="skipped", started_at=None, finished_at=None)
    for queryset in (CycleRun.objects.all(), CycleRun.objects.filter(status="failed")):
        probed = ProbedDatesQuerySet.wrap(queryset).datetimes("started_at", kind)
        assert list(probed) == list(queryset.datetimes("started_at", kind))
    within = CycleRun.objects.filter(started_at__year=2025)
    assert list(ProbedDatesQuerySet.wrap(within).datetimes("started_at", kind)) == list(
        within.datetimes("started_at", kind)
    )
