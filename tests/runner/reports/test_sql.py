"""The database's arithmetic: both percentile paths agree with linear interpolation."""

from datetime import UTC, datetime

import pytest
from django.db.models import F, FloatField
from django.db.models.functions import Cast
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import reports
from runner.models import CycleRun
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


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
