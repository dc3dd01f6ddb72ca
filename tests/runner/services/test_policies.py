"""Run policies through the services, in-process: overlap, catch-up, retries, backfill, overrides.

tests/e2e/test_schedule_policies.py shows the same with a real qcluster and dispatcher.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from runner import execution, scheduling, services
from runner.actors import Actor
from runner.errors import ClaimRefused, CycleCancelled, InvalidInput, TransitionRefused
from runner.models import AgentState, AuditEvent, CycleRun, RunStatus
from runner.services import policies
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db
ACTOR = Actor.cli()


def running_agent(**fields):
    now = timezone.now()
    return AgentFactory(state=AgentState.RUNNING, next_run=now - timedelta(seconds=1), **fields)


def claim(agent, now=None, slot=None):
    return services.cycle_claim_scheduled(agent_id=agent.pk, worker="w:1", now=now, slot=slot)


def make_due(agent, at):
    agent.refresh_from_db()
    agent.next_run = at
    agent.save(update_fields=["next_run"])


def sent_tasks():
    return [SignedPackage.loads(row.payload) for row in OrmQ.objects.order_by("id")]


def finish(claimed, status="succeeded"):
    return services.cycle_finish(
        run_id=claimed.run.pk, token=claimed.token, outcome=services.Outcome(status=status)
    )


def test_buffer_one_runs_a_slot_right_after_the_run_in_flight_and_skips_a_second(
    django_capture_on_commit_callbacks, settings
):
    settings.RUNNER_LEASE_SECONDS = 600  # the first run stays in flight past the next slot
    agent = running_agent(overlap_policy="buffer_one", interval_minutes=1)
    first = claim(agent)
    buffered_slot = timezone.now()  # after run 1 started: it comes while run 1 is in flight
    make_due(agent, buffered_slot)
    assert claim(agent) is None  # buffered: no record, the slot stays the agent's next
    agent.refresh_from_db()
    assert agent.next_run == buffered_slot
    row = Schedule.objects.get(name=scheduling.schedule_name(agent))
    assert row.next_run == buffered_slot + timedelta(minutes=1)  # backstop: the next slot

    # The next slot comes while the first run is still going: the buffer is full.
    later = buffered_slot + timedelta(minutes=1)
    with pytest.raises(ClaimRefused, match="already buffered"):
        claim(agent, now=later + timedelta(seconds=1), slot=later)
    skipped = CycleRun.objects.get(agent=agent, status=RunStatus.SKIPPED)
    assert skipped.slot == later and "buffer_one" in skipped.error_message

    with django_capture_on_commit_callbacks(execute=True):
        finish(first)
    (task,) = [t for t in sent_tasks() if t["func"] == scheduling.SCHEDULED_TASK]
    assert task["kwargs"]["slot"] == buffered_slot.isoformat()
    second = claim(agent, now=later + timedelta(seconds=2))
    assert second.run.slot == buffered_slot
    assert f"started after run {first.run.pk}" in second.run.policy_note
    assert "buffer_one" in second.run.policy_note


def test_cancel_previous_stops_the_run_in_flight_then_starts_the_slot(
    django_capture_on_commit_callbacks,
):
    agent = running_agent(overlap_policy="cancel_previous")
    first = claim(agent)
    slot = timezone.now()
    make_due(agent, slot)
    assert claim(agent) is None
    old = CycleRun.objects.get(pk=first.run.pk)
    assert old.cancel_requested and "cancel_previous" in old.policy_note
    with pytest.raises(CycleCancelled):
        services.cycle_checkpoint(run_id=old.pk, token=first.token)
    with django_capture_on_commit_callbacks(execute=True):
        finish(first, status="cancelled")
    assert any(t["kwargs"].get("slot") == slot.isoformat() for t in sent_tasks())
    started = claim(agent)
    assert started.run.slot == slot and f"run {old.pk} (cancelled)" in started.run.policy_note
    assert not CycleRun.objects.filter(agent=agent, status=RunStatus.SKIPPED).exists()


def test_window_catch_up_runs_missed_slots_one_at_a_time_oldest_first(
    django_capture_on_commit_callbacks,
):
    now = timezone.now()
    agent = running_agent(interval_minutes=10, catchup_policy="window", catchup_window_minutes=25)
    make_due(agent, now - timedelta(minutes=50, seconds=30))  # 6 slots due; 3 in the window
    ran = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            claimed = claim(agent, now=now)
            assert claim(agent, now=now) is None  # the next missed slot waits for this one
            ran.append(claimed.run)
            finish(claimed)
    slots = [run.slot for run in ran]
    assert slots == sorted(slots) and slots[0] >= now - timedelta(minutes=25)
    assert [run.missed_slots for run in ran] == [3, 0, 0]
    agent.refresh_from_db()
    assert agent.next_run > now  # the backlog is done


def test_a_failed_slot_is_retried_with_growing_backoff_and_counted_once(settings):
    settings.RUNNER_RETRY_MAX_DELAY_SECONDS = 3600
    agent = running_agent(
        kind="test-fail", retry_attempts=2, retry_backoff_seconds=10, max_consecutive_failures=1
    )
    first = execution.execute_claim(claim(agent))
    retry = CycleRun.objects.get(retry_of=first)
    assert (retry.status, retry.attempt, retry.slot) == (RunStatus.QUEUED, 1, first.slot)
    delay_1 = (retry.not_before - retry.queued_at).total_seconds()
    assert 10 <= delay_1 <= 15
    agent.refresh_from_db()
    assert agent.state == AgentState.RUNNING and agent.consecutive_failures == 0
    assert Schedule.objects.filter(name=f"{policies.RETRY_PREFIX}{retry.pk}").exists()

    assert policies.dispatch_due_retries(now=retry.not_before - timedelta(seconds=1)) == []
    assert policies.dispatch_due_retries(now=retry.not_before) == [retry.pk]
    second = execution.run_queued(retry.pk)
    third = CycleRun.objects.get(retry_of=second)
    delay_2 = (third.not_before - third.queued_at).total_seconds()
    assert 20 <= delay_2 <= 30 and delay_2 > delay_1 and third.attempt == 2
    final = execution.run_queued(third.pk)
    assert final.status == RunStatus.FAILED and not CycleRun.objects.filter(retry_of=final)
    agent.refresh_from_db()
    # Three failed runs, one failed slot: the breaker counts it once its retries ran out.
    assert (agent.error_count, agent.consecutive_failures, agent.state) == (3, 1, "error")


def test_a_retry_waits_for_a_run_in_flight_and_is_dropped_by_stop():
    agent = running_agent(kind="test-fail", retry_attempts=1, retry_backoff_seconds=1)
    first = execution.execute_claim(claim(agent))
    retry = CycleRun.objects.get(retry_of=first)
    make_due(agent, timezone.now())
    in_flight = claim(agent)
    with pytest.raises(ClaimRefused, match="Waits"):
        execution.run_queued(retry.pk)
    assert CycleRun.objects.get(pk=retry.pk).status == RunStatus.QUEUED
    services.agent_stop(agent=agent, actor=ACTOR)
    dropped = CycleRun.objects.get(pk=retry.pk)
    assert dropped.status == RunStatus.SKIPPED and "stopped" in dropped.error_message
    assert not Schedule.objects.filter(name__startswith=policies.RETRY_PREFIX).exists()
    assert in_flight.run.pk != retry.pk


def test_backfill_queues_past_slots_runs_them_oldest_first_and_is_audited(
    django_capture_on_commit_callbacks,
):
    agent = AgentFactory(schedule_kind="cron", cron="0 * * * *", timezone="Europe/London")
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    done = CycleRun.objects.create(
        agent=agent,
        trigger="schedule",
        slot=start + timedelta(hours=1),
        status="succeeded",
        queued_at=start,
        started_at=start,
        finished_at=start,
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs = services.agent_backfill(
            agent=agent,
            start=start.isoformat(),
            end=(start + timedelta(hours=3)).isoformat(),
            actor=ACTOR,
            reason="fill the outage",
        )
    assert [run.slot for run in runs] == [
        start,
        start + timedelta(hours=2),
        start + timedelta(hours=3),
    ]
    assert all(run.trigger == "backfill" for run in runs)
    event = AuditEvent.objects.get(agent=agent, action="backfill")
    assert event.outcome == "applied" and event.reason == "fill the outage"
    assert event.changes["backfill"]["after"]["queued"] == 3
    assert event.changes["backfill"]["after"]["already_recorded"] == 1
    # Only the oldest was sent; each run's end sends the next.
    queued = [t["args"][0] for t in sent_tasks() if t["func"] == scheduling.QUEUED_TASK]
    assert queued == [runs[0].pk]
    for expected in runs:
        with django_capture_on_commit_callbacks(execute=True):
            run = execution.run_queued(expected.pk)
        assert run.status == RunStatus.SUCCEEDED
    assert CycleRun.objects.filter(agent=agent, slot=done.slot).count() == 1


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("yesterday", "2026-01-01", "from"),
        ("2026-01-02", "2026-01-01", "from"),
        ("2026-01-01", "2999-01-01", "to"),
        ("2000-01-01", "2026-01-01", "from"),  # more slots than RUNNER_BACKFILL_MAX_SLOTS
        ("0001-01-01T00:00Z", "0001-01-02T00:00Z", "from"),
    ],
)
def test_a_bad_backfill_range_is_refused_naming_the_field_and_audited(start, end, field):
    agent = AgentFactory(interval_minutes=60)
    with pytest.raises(InvalidInput) as caught:
        services.agent_backfill(agent=agent, start=start, end=end, actor=ACTOR)
    assert caught.value.field == field
    assert AuditEvent.objects.get(agent=agent, action="backfill").outcome == "refused"
    assert not CycleRun.objects.filter(agent=agent).exists()


def test_a_backfill_of_slots_that_all_ran_is_refused():
    agent = AgentFactory(interval_minutes=60)
    start = timezone.now() - timedelta(hours=2)
    CycleRun.objects.create(
        agent=agent, trigger="schedule", slot=start, status="succeeded", queued_at=start
    )
    with pytest.raises(TransitionRefused, match="Nothing to backfill"):
        services.agent_backfill(
            agent=agent, start=start, end=start + timedelta(minutes=30), actor=ACTOR
        )


def test_run_once_with_parameter_overrides_records_them_and_keeps_the_stored_configuration():
    agent = AgentFactory(kind="test-ok", parameters={"value": 1})
    queued = services.agent_run_once(
        agent=agent, actor=ACTOR, enqueue=False, parameters={"value": 5}
    )
    run = execution.run_queued(queued.pk)
    assert run.summary["value"] == 5 and run.parameter_overrides == {"value": 5}
    assert run.config_snapshot["parameters"] == {"value": 5}
    assert run.config_snapshot["parameter_overrides"] == {"value": 5}
    event = AuditEvent.objects.get(agent=agent, action="run_once")
    assert event.changes == {"parameter_overrides": {"before": None, "after": {"value": 5}}}
    agent.refresh_from_db()
    assert agent.parameters == {"value": 1}


@pytest.mark.parametrize("overrides", [{"value": "five"}, ["value", 5], "value=5"])
def test_run_once_overrides_the_kind_refuses_change_nothing(overrides):
    agent = AgentFactory(kind="test-ok")
    with pytest.raises(InvalidInput) as caught:
        services.agent_run_once(agent=agent, actor=ACTOR, parameters=overrides)
    assert caught.value.field == "parameters"
    assert AuditEvent.objects.get(agent=agent).outcome == "refused"
    assert not CycleRun.objects.filter(agent=agent).exists()


def test_switching_to_cron_is_audited_and_moves_the_next_slot():
    agent = running_agent(interval_minutes=60)
    agent.next_run = timezone.now() + timedelta(minutes=30)
    agent.save()
    services.agent_update_config(
        agent=agent,
        values={
            "schedule_kind": "cron",
            "cron": "*/15 * * * *",
            "timezone": "Asia/Kolkata",
            "retry_attempts": 2,
        },
        actor=ACTOR,
    )
    agent.refresh_from_db()
    assert agent.next_run.minute % 15 == 0 and agent.next_run > timezone.now()
    assert agent.next_run <= timezone.now() + timedelta(minutes=15)
    event = AuditEvent.objects.get(agent=agent, action="configure")
    assert event.changes["schedule_kind"] == {"before": "interval", "after": "cron"}
    assert event.changes["retry_attempts"] == {"before": 0, "after": 2}
    assert Schedule.objects.get(name=scheduling.schedule_name(agent)).next_run == agent.next_run


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"schedule_kind": "cron", "cron": "every day"}, "cron"),
        ({"schedule_kind": "cron"}, "cron"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"active_windows": [{"days": "mon", "start": "10:00", "end": "09:00"}]}, "active_windows"),
        (
            {
                "schedule_kind": "cron",
                "cron": "0 3 * * *",
                "active_windows": [{"days": "mon-fri", "start": "13:30", "end": "20:00"}],
            },
            "active_windows",
        ),
        ({"retry_on": "failed,exploded"}, "retry_on"),
        ({"overlap_policy": "queue_all"}, "overlap_policy"),
        ({"jitter_seconds": 3601}, "jitter_seconds"),
        ({"interval_minutes": 10**15}, "interval_minutes"),
    ],
)
def test_schedule_settings_that_cannot_work_are_refused_and_change_nothing(values, field):
    agent = AgentFactory()
    with pytest.raises(InvalidInput) as caught:
        services.agent_update_config(agent=agent, values=values, actor=ACTOR)
    assert field in caught.value.errors
    agent.refresh_from_db()
    assert (agent.schedule_kind, agent.timezone, agent.active_windows) == ("interval", "UTC", [])
    assert AuditEvent.objects.get(agent=agent).outcome == "refused"
