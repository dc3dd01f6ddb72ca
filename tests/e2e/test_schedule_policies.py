"""Calendar schedules and run policies with real parts: `manage.py qcluster` and
`manage.py rundispatcher` subprocesses against the test database (PostgreSQL in CI).

The cron test waits for real minute boundaries; the policy tests make a slot due by moving the
agent's next slot to "now plus a moment" (as tests/e2e/test_cluster_scheduling.py does).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runner import services
from runner.actors import Actor
from runner.models import CycleRun, RunStatus
from tests.e2e import test_cluster_scheduling as cluster_tests
from tests.factories import AgentFactory
from tests.support.processes import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ACTOR = Actor.cli()
# The real qcluster and dispatcher of the scheduling tests, and their way of making a slot due.
procs = cluster_tests.procs
make_due = cluster_tests.make_due


def runs(agent, **filters):
    return list(CycleRun.objects.filter(agent=agent, **filters).order_by("id"))


def enough(agent, count, **filters):
    found = runs(agent, **filters)
    return found if len(found) >= count else None


def test_a_cron_agent_every_minute_fires_within_a_second_of_each_slot(procs):
    procs.start_all()
    agent = AgentFactory(
        kind="test-ok", schedule_kind="cron", cron="* * * * *", timezone="America/New_York"
    )
    services.agent_start(agent=agent, actor=ACTOR)  # the first cycle runs at once
    scheduled = wait_for(
        lambda: enough(agent, 3, status="succeeded"),
        timeout=150,
        message="two cron slots after the start's cycle",
    )
    for run in scheduled[1:]:
        assert run.slot.second == 0 and run.slot.microsecond == 0, run.slot
        delay = (run.started_at - run.slot).total_seconds()
        assert 0 <= delay < 1.0, (run.slot, run.started_at, procs.all_output()[-3000:])
    assert scheduled[2].slot - scheduled[1].slot == timedelta(minutes=1)
    assert not runs(agent, status="skipped")


@pytest.mark.parametrize("policy", ["skip", "buffer_one", "cancel_previous"])
def test_each_overlap_policy_leaves_the_documented_run_records(procs, policy):
    procs.start_all()
    agent = AgentFactory(
        kind="test-slow",
        parameters={"seconds": 4, "step": 0.05},
        overlap_policy=policy,
        interval_minutes=60,
    )
    services.agent_start(agent=agent, actor=ACTOR)
    first = wait_for(lambda: enough(agent, 1, status="running"), timeout=15, message="run 1")[0]
    slot = make_due(agent, timezone.now() + timedelta(seconds=1))

    if policy == "skip":
        (skipped,) = wait_for(
            lambda: enough(agent, 1, status="skipped"), timeout=10, message="the skipped slot"
        )
        assert skipped.slot == slot and "still running" in skipped.error_message
        done = wait_for(
            lambda: enough(agent, 1, status="succeeded"), timeout=15, message="run 1 to finish"
        )
        assert done[0].pk == first.pk
        assert len(runs(agent)) == 2
        return

    second = wait_for(
        lambda: CycleRun.objects.filter(agent=agent, slot=slot, started_at__isnull=False).first(),
        timeout=20,
        message="the slot to start after run 1",
    )
    first.refresh_from_db()
    assert first.finished_at is not None and first.finished_at <= second.started_at
    # It starts right when run 1 ends (the end sends it), not at the backstop.
    assert (second.started_at - first.finished_at).total_seconds() < 1.0, procs.all_output()
    assert f"started after run {first.pk}" in second.policy_note
    if policy == "buffer_one":
        assert first.status == RunStatus.SUCCEEDED and "buffer_one" in second.policy_note
    else:
        assert first.status == RunStatus.CANCELLED
        assert "cancel_previous" in first.policy_note
        # Stopped at its next checkpoint: long before its 4 s were up.
        assert (first.finished_at - first.started_at).total_seconds() < 3.5
    assert not runs(agent, status="skipped")


def test_a_failed_run_is_retried_as_linked_runs_with_growing_delays(procs):
    procs.start_all()
    agent = AgentFactory(
        kind="test-fail", retry_attempts=2, retry_backoff_seconds=1, max_consecutive_failures=1
    )
    services.agent_start(agent=agent, actor=ACTOR)
    first, second, third = wait_for(
        lambda: enough(agent, 3, status="failed"), timeout=30, message="the run and two retries"
    )
    assert (second.retry_of_id, third.retry_of_id) == (first.pk, second.pk)
    assert [r.attempt for r in (first, second, third)] == [0, 1, 2]
    assert first.slot == second.slot == third.slot
    gap_1 = (second.started_at - first.finished_at).total_seconds()
    gap_2 = (third.started_at - second.finished_at).total_seconds()
    assert 1.0 <= gap_1 < 1.5 + 1.0  # backoff 1..1.5 s, sent within a dispatcher poll
    assert 2.0 <= gap_2 < 3.0 + 1.0 and gap_2 > gap_1
    agent.refresh_from_db()
    # The slot is counted once its retries ran out: then the breaker (limit 1) trips.
    assert agent.state == "error" and agent.error_count == 3
    assert len(runs(agent)) == 3
