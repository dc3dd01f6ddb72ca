"""Schedule rows kept in step with runner state, slot-carrying tasks, the dispatcher and downtime.

These run in-process; tests/e2e/test_cluster_scheduling.py proves the same with real clusters.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule
from django_q.scheduler import scheduler

from runner import scheduling, services, tasks
from runner.actors import Actor
from runner.models import AgentState, CycleRun, RunStatus
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db
ACTOR = Actor.cli()


@pytest.fixture
def q_scheduler(monkeypatch):
    """django-q2's real scheduler pass; only its connection clean-up is held off, because it
    would close the connection this test's transaction lives on."""
    import django_q.scheduler

    monkeypatch.setattr(django_q.scheduler, "close_old_django_connections", lambda: None)
    return scheduler


def schedule_of(agent):
    return Schedule.objects.filter(name=scheduling.schedule_name(agent)).first()


def queued_tasks():
    """(func, args, slot) of every cycle task waiting in the ORM broker (not maintenance tasks)."""
    from django_q.signing import SignedPackage

    found = []
    for row in OrmQ.objects.order_by("id"):
        task = SignedPackage.loads(row.payload)
        if task["func"] in (scheduling.SCHEDULED_TASK, scheduling.QUEUED_TASK):
            found.append((task["func"], task["args"], task["kwargs"].get("slot")))
    return found


def test_schedule_follows_every_transition(django_capture_on_commit_callbacks):
    agent = AgentFactory(interval_minutes=15)
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_start(agent=agent, actor=ACTOR, now=now)
    schedule = schedule_of(agent)
    assert schedule.func == scheduling.SCHEDULED_TASK and schedule.args == str(agent.pk)
    assert schedule.minutes == 15 and schedule.intended_date_kwarg == "slot"
    # django-q2 passes these options on: the hard timeout sits above the cycle's own deadline
    assert schedule.kwargs == repr(
        {"q_options": {"timeout": agent.timeout_seconds + 60, "save": False}}
    )
    # start queued the first slot itself, so the Schedule already points at the next one
    assert schedule.next_run == now + timedelta(minutes=15)
    assert queued_tasks() == [(scheduling.SCHEDULED_TASK, (agent.pk,), now.isoformat())]

    services.agent_pause(agent=agent, actor=ACTOR)
    assert schedule_of(agent) is None
    services.agent_resume(agent=agent, actor=ACTOR)
    assert schedule_of(agent) is not None

    services.agent_set_interval(agent=agent, interval_minutes=30, actor=ACTOR)
    agent.refresh_from_db()
    assert schedule_of(agent).minutes == 30
    assert schedule_of(agent).next_run == agent.next_run

    services.agent_stop(agent=agent, actor=ACTOR)
    assert schedule_of(agent) is None


def test_run_once_returns_a_queued_run_at_once(django_capture_on_commit_callbacks):
    agent = AgentFactory()
    with django_capture_on_commit_callbacks(execute=True):
        run = services.agent_run_once(agent=agent, actor=ACTOR)
    assert run.pk and run.status == RunStatus.QUEUED
    assert queued_tasks() == [(scheduling.QUEUED_TASK, (run.pk,), None)]
    run.refresh_from_db()
    assert run.task_id  # the django-q2 task id, for tracing


def test_a_second_delivery_of_a_slot_is_a_no_op():
    agent = AgentFactory(state=AgentState.RUNNING, interval_minutes=5)
    slot = timezone.now() - timedelta(seconds=1)
    agent.next_run = slot
    agent.save()
    first = tasks.run_scheduled_cycle(agent.pk, slot=slot.isoformat())
    second = tasks.run_scheduled_cycle(agent.pk, slot=slot.isoformat())
    assert first["ran"] is True and first["status"] == RunStatus.SUCCEEDED
    assert second == {"ran": False, "reason": "nothing due"}
    assert CycleRun.objects.filter(agent=agent).count() == 1


def test_a_queued_slot_for_a_paused_agent_is_skipped_once_with_the_reason():
    agent = AgentFactory(state=AgentState.PAUSED)
    slot = timezone.now()
    for _ in range(2):
        result = tasks.run_scheduled_cycle(agent.pk, slot=slot.isoformat())
        assert result["ran"] is False
    (skipped,) = CycleRun.objects.filter(agent=agent)
    assert skipped.status == RunStatus.SKIPPED and skipped.slot == slot
    assert skipped.error_message == "Scheduled cycle skipped: agent is paused"


def test_after_downtime_the_agent_runs_once_and_counts_the_missed_slots():
    now = timezone.now()
    agent = AgentFactory(state=AgentState.RUNNING, interval_minutes=10)
    agent.next_run = now - timedelta(minutes=95)  # ten slots passed while nothing ran
    agent.save()
    result = tasks.run_scheduled_cycle(agent.pk)
    assert result["ran"] is True
    (run,) = CycleRun.objects.filter(agent=agent)
    assert run.missed_slots == 9 and run.slot == now - timedelta(minutes=95)
    agent.refresh_from_db()
    assert now < agent.next_run <= now + timedelta(minutes=10)
    assert tasks.run_scheduled_cycle(agent.pk) == {"ran": False, "reason": "nothing due"}


def test_each_due_slot_is_dispatched_once_by_any_number_of_dispatchers_and_django_q(q_scheduler):
    agent = AgentFactory(state=AgentState.RUNNING, interval_minutes=60)
    slot = timezone.now() - timedelta(seconds=2)
    agent.next_run = slot
    agent.save()
    scheduling.sync_schedule(agent)

    assert scheduling.dispatch_due_slots() == [(agent.pk, slot)]
    assert scheduling.dispatch_due_slots() == []
    q_scheduler()  # django-q2's own pass finds nothing left to send
    assert queued_tasks() == [(scheduling.SCHEDULED_TASK, (agent.pk,), slot.isoformat())]
    assert schedule_of(agent).next_run == slot + timedelta(minutes=60)


def test_a_pass_sends_every_due_slot_in_one_batch_and_leaves_the_rest(
    django_assert_max_num_queries,
):
    now = timezone.now()
    due, later = [], []
    for i in range(5):
        agent = AgentFactory(state=AgentState.RUNNING, interval_minutes=1)
        agent.next_run = now - timedelta(seconds=i) if i < 4 else now + timedelta(seconds=30)
        agent.save()
        scheduling.sync_schedule(agent)
        (due if i < 4 else later).append(agent)

    # find the due rows and the agents' timing, take them in one UPDATE, queue them in one INSERT
    with django_assert_max_num_queries(4 + 2):  # + savepoint/transaction control
        sent = scheduling.dispatch_due_slots(now=now)
    assert sorted(sent) == sorted((agent.pk, agent.next_run) for agent in due)
    assert len(queued_tasks()) == len(due)
    for agent in due:
        assert schedule_of(agent).next_run == agent.next_run + timedelta(minutes=1)
    assert schedule_of(later[0]).next_run == later[0].next_run


def test_a_slot_another_dispatcher_took_between_the_read_and_the_update_is_not_sent_again():
    now = timezone.now()
    agents = []
    for _ in range(2):
        agent = AgentFactory(state=AgentState.RUNNING, interval_minutes=1)
        agent.next_run = now - timedelta(seconds=1)
        agent.save()
        scheduling.sync_schedule(agent)
        agents.append(agent)
    first, second = (schedule_of(agent) for agent in agents)
    following = now + timedelta(seconds=59)
    Schedule.objects.filter(pk=first.pk).update(next_run=following)  # the other one was faster

    taken = scheduling._take_slots(
        {first.pk: (first.next_run, following), second.pk: (second.next_run, following)}
    )
    assert taken == {second.pk}
    assert schedule_of(agents[1]).next_run == following


def test_django_q_scheduler_alone_runs_the_slot_it_was_given(monkeypatch, q_scheduler):
    """The durable backstop: with no dispatcher, django-q2's own pass runs the slot."""
    monkeypatch.setattr(Conf, "SYNC", True)
    agent = AgentFactory(state=AgentState.RUNNING, interval_minutes=60)
    slot = timezone.now() - timedelta(seconds=5)
    agent.next_run = slot
    agent.save()
    scheduling.sync_schedule(agent)
    q_scheduler()
    (run,) = CycleRun.objects.filter(agent=agent)
    assert run.status == RunStatus.SUCCEEDED and run.slot == slot
    assert run.task_id


def test_overdue_slots_and_stale_manual_runs_are_sent_again_once():
    agent = AgentFactory(state=AgentState.RUNNING, interval_minutes=60)
    agent.next_run = timezone.now() - timedelta(seconds=30)
    agent.save()
    old = timezone.now() - timedelta(seconds=30)
    manual = CycleRun.objects.create(
        agent=AgentFactory(), trigger="manual", status="queued", queued_at=old, task_id="lost"
    )
    # a CLI run is claimed by its own process, never by the cluster
    CycleRun.objects.create(agent=AgentFactory(), trigger="cli", status="queued", queued_at=old)
    sent = set()
    assert scheduling.redispatch_overdue(grace_seconds=10, already_sent=sent) == 2
    assert scheduling.redispatch_overdue(grace_seconds=10, already_sent=sent) == 0
    assert sorted(queued_tasks()) == sorted(
        [
            (scheduling.SCHEDULED_TASK, (agent.pk,), agent.next_run.isoformat()),
            (scheduling.QUEUED_TASK, (manual.pk,), None),
        ]
    )


def test_breaker_trips_and_start_clears_it():
    agent = AgentFactory(kind="test-fail", state=AgentState.RUNNING, max_consecutive_failures=2)
    for _ in range(2):
        agent.next_run = timezone.now()
        agent.save(update_fields=["next_run"])
        scheduling.sync_schedule(agent)
        tasks.run_scheduled_cycle(agent.pk)
        agent.refresh_from_db()
    assert agent.state == AgentState.ERROR and agent.next_run is None
    assert schedule_of(agent) is None
    assert agent.audit_events.get(action="trip").source == "system"
    services.agent_start(agent=agent, actor=ACTOR)
    agent.refresh_from_db()
    assert agent.state == AgentState.RUNNING and agent.consecutive_failures == 0
    assert schedule_of(agent) is not None


def test_start_right_after_stop_waits_for_the_old_cycle_instead_of_skipping_an_interval(
    settings, django_capture_on_commit_callbacks
):
    settings.RUNNER_LEASE_SECONDS = 3
    agent = AgentFactory(interval_minutes=60, state=AgentState.RUNNING)
    agent.next_run = timezone.now() - timedelta(seconds=1)
    agent.save()
    old = services.cycle_claim_scheduled(agent_id=agent.pk, worker="w:1")
    services.agent_stop(agent=agent, actor=ACTOR)  # the old cycle has not reached a checkpoint
    services.agent_start(agent=agent, actor=ACTOR)
    agent.refresh_from_db()
    first_slot = agent.next_run

    started = timezone.now()
    assert tasks.run_scheduled_cycle(agent.pk) == {"ran": False, "reason": "nothing due"}
    agent.refresh_from_db()
    assert agent.next_run == first_slot  # the start's slot waits, keeping its time
    # The schedule row looks again after lease / 3, as a backstop.
    assert started < schedule_of(agent).next_run <= timezone.now() + timedelta(seconds=1)
    assert not CycleRun.objects.filter(agent=agent, status=RunStatus.SKIPPED).exists()

    with django_capture_on_commit_callbacks(execute=True):
        services.cycle_finish(
            run_id=old.run.pk, token=old.token, outcome=services.Outcome(status="cancelled")
        )
    # The old cycle's end sends the waiting slot at once.
    assert (scheduling.SCHEDULED_TASK, (agent.pk,), first_slot.isoformat()) in [
        (func, tuple(args), slot) for func, args, slot in queued_tasks()
    ]
    claim = services.cycle_claim_scheduled(agent_id=agent.pk, worker="w:2")
    assert claim is not None and claim.run.slot == first_slot


def deliver_queued_slots():
    """Run every queued scheduled-cycle task as a worker would, oldest first."""
    results = []
    for func, args, slot in queued_tasks():
        if func == scheduling.SCHEDULED_TASK:
            results.append(tasks.run_scheduled_cycle(*args, slot=slot))
    return results


@pytest.mark.parametrize(
    "follow_up",
    [
        lambda agent: services.agent_set_interval(agent=agent, interval_minutes=30, actor=ACTOR),
        lambda agent: services.agent_update_config(
            agent=agent, values={"interval_minutes": 5}, actor=ACTOR
        ),
    ],
    ids=["set-interval", "configure-interval"],
)
def test_the_first_cycle_of_a_start_runs_whatever_interval_change_follows(
    django_capture_on_commit_callbacks, follow_up
):
    """The seed's own order: POST start, then PUT interval at once, before any worker runs."""
    agent = AgentFactory(interval_minutes=60)
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_start(agent=agent, actor=ACTOR)
        follow_up(agent)
    deliver_queued_slots()
    run = CycleRun.objects.get(agent=agent)
    assert (run.trigger, run.status) == ("schedule", RunStatus.SUCCEEDED)
    agent.refresh_from_db()
    assert agent.next_run == run.slot + timedelta(minutes=agent.interval_minutes)


def test_a_start_whose_first_slot_was_superseded_leaves_a_record(
    django_capture_on_commit_callbacks,
):
    """start -> stop -> start before a worker ran the first slot: that slot says why it did not
    run, and the second start's cycle runs."""
    agent = AgentFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.agent_start(agent=agent, actor=ACTOR, now=timezone.now() - timedelta(seconds=5))
        services.agent_stop(agent=agent, actor=ACTOR)
        services.agent_start(agent=agent, actor=ACTOR)
    deliver_queued_slots()
    first, second = CycleRun.objects.filter(agent=agent).order_by("slot")
    assert first.status == RunStatus.SKIPPED and "superseded" in first.error_message
    assert second.status == RunStatus.SUCCEEDED
    assert deliver_queued_slots() and CycleRun.objects.filter(agent=agent).count() == 2
