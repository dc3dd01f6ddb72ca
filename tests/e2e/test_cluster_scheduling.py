"""Scheduling with real parts: `manage.py qcluster` and `manage.py rundispatcher` subprocesses
against the test database (PostgreSQL in CI, a file on SQLite), and Redis as broker where asked.

Slots are made due by moving `next_run` (and the Schedule row beside it) to "now plus a moment",
the way time would, so the tests do not wait a whole interval.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule
from django_q.tasks import async_task

from runner import monitoring, scheduling, selectors, services
from runner.actors import Actor
from runner.models import Agent, AgentState, AuditEvent, CycleRun, RunStatus
from tests.factories import AgentFactory
from tests.support.processes import LEASE_SECONDS, Processes, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# A Redis database of the tests' own: the broker test empties it first.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/4")
ACTOR = Actor.cli()
HEARTBEAT = LEASE_SECONDS / 3


def redis_available():
    from urllib.parse import urlsplit

    url = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((url.hostname, url.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def procs(transactional_db, tmp_path, settings):
    settings.RUNNER_LEASE_SECONDS = LEASE_SECONDS
    processes = Processes(tmp_path)
    yield processes
    processes.stop_all()


def make_due(agent, at):
    """Move the agent's next slot to `at`, as the clock would (locks the row like a claim)."""
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        locked.next_run = at
        locked.save(update_fields=["next_run"])
        scheduling.sync_schedule(locked)
    return at


def run_of(agent, **filters):
    return CycleRun.objects.filter(agent=agent, **filters).order_by("id").first()


def runs(agent):
    return list(CycleRun.objects.filter(agent=agent).order_by("id"))


def finished(agent, count):
    done = CycleRun.objects.filter(agent=agent, finished_at__isnull=False).exclude(
        status=RunStatus.SKIPPED
    )
    return list(done.order_by("id")) if done.count() >= count else None


def worker_pid(run):
    return int(run.worker.rsplit(":", 1)[1])


def assert_none_running(agent):
    assert not CycleRun.objects.filter(agent=agent, status=RunStatus.RUNNING).exists()


# --- start, interval, broker variants -------------------------------------------------------------


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_start_runs_at_once_then_on_the_next_slot(procs, broker, monkeypatch):
    if broker == "redis":
        if not redis_available():
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        procs.env["REDIS_URL"] = REDIS_URL
        # django-q2 read its settings at import: switch this process's broker the same way.
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    procs.start_all()
    agent = AgentFactory(kind="test-ok", interval_minutes=1, parameters={"value": 3})

    started = timezone.now()
    services.agent_start(agent=agent, actor=ACTOR)
    assert Schedule.objects.filter(name=scheduling.schedule_name(agent)).exists()

    (first,) = wait_for(lambda: finished(agent, 1), timeout=10, message="the first cycle")
    assert first.status == RunStatus.SUCCEEDED, procs.all_output()
    assert first.trigger == "schedule"
    assert first.slot == agent.next_run  # the slot start queued
    assert first.started_at - started < timedelta(seconds=3)
    assert first.task_id, "the django-q2 task id is recorded on the run"
    agent.refresh_from_db()
    assert agent.next_run == first.slot + timedelta(minutes=1)  # the next slot follows the interval
    schedule = Schedule.objects.get(name=scheduling.schedule_name(agent))
    assert schedule.next_run == agent.next_run

    slot = make_due(agent, timezone.now() + timedelta(seconds=1.5))
    _, second = wait_for(lambda: finished(agent, 2), timeout=10, message="the second cycle")
    assert second.status == RunStatus.SUCCEEDED
    assert second.slot == slot
    assert second.started_at >= slot, "a cycle never starts before its slot"
    assert second.started_at - slot < timedelta(seconds=2), procs.all_output()
    time.sleep(0.5)
    assert CycleRun.objects.filter(agent=agent).count() == 2  # no duplicate run of either slot
    if broker == "redis":
        assert not OrmQ.objects.exists(), "with REDIS_URL no task goes through the database"


# --- stop and pause during a cycle ------------------------------------------------------------------


def test_stop_cancels_at_next_checkpoint_and_pause_lets_the_cycle_finish(procs):
    procs.start_all()
    stopped = AgentFactory(kind="test-slow", parameters={"seconds": 30, "step": 0.05})
    paused = AgentFactory(kind="test-slow", parameters={"seconds": 1.5, "step": 0.05})
    services.agent_start(agent=stopped, actor=ACTOR)
    services.agent_start(agent=paused, actor=ACTOR)
    wait_for(lambda: run_of(stopped, status="running"), timeout=10, message="slow cycle")
    wait_for(lambda: run_of(paused, status="running"), timeout=10, message="second slow cycle")

    services.agent_stop(agent=stopped, actor=ACTOR)
    services.agent_pause(agent=paused, actor=ACTOR)
    cancelled = wait_for(
        lambda: run_of(stopped, status="cancelled"), timeout=5, message="cancellation"
    )
    stop_event = AuditEvent.objects.get(agent=stopped, action="stop")
    # One checkpoint (every 50 ms) plus the database round trips, not the 30 s the cycle wanted.
    assert cancelled.finished_at - stop_event.created_at < timedelta(seconds=1.5)
    assert cancelled.error_type == "CycleCancelled"
    assert not Schedule.objects.filter(name=scheduling.schedule_name(stopped)).exists()

    finished_run = wait_for(
        lambda: run_of(paused, status="succeeded"), timeout=5, message="paused cycle to finish"
    )
    assert finished_run.summary["steps"] > 0
    assert not Schedule.objects.filter(name=scheduling.schedule_name(paused)).exists()

    # A task already queued for the paused agent only records why it did not run, once.
    slot = timezone.now()
    for _ in range(2):
        async_task(scheduling.SCHEDULED_TASK, paused.pk, slot=slot.isoformat())
    skipped = wait_for(lambda: run_of(paused, status="skipped"), timeout=5, message="skipped run")
    assert "paused" in skipped.error_message
    assert skipped.slot == slot
    time.sleep(1.0)
    assert CycleRun.objects.filter(agent=paused, status="skipped").count() == 1
    assert CycleRun.objects.filter(agent=paused, started_at__isnull=False).count() == 1
    paused.refresh_from_db()
    assert paused.state == AgentState.PAUSED


def test_a_pause_with_an_end_resumes_on_time_with_its_held_slot(procs):
    procs.start_all()
    agent = AgentFactory(kind="test-ok", interval_minutes=60)
    services.agent_start(agent=agent, actor=ACTOR)
    first = wait_for(lambda: run_of(agent, status="succeeded"), timeout=10, message="first cycle")
    services.agent_pause(agent=agent, actor=ACTOR, until=timezone.now() + timedelta(seconds=3))
    until = Agent.objects.get(pk=agent.pk).paused_until
    resumed = wait_for(
        lambda: AuditEvent.objects.filter(agent=agent, action="resume", source="system").first(),
        timeout=10,
        message="the dispatcher to end the pause",
    )
    # The dispatcher looks at least every RUNNER_DISPATCH_POLL_SECONDS (0.2 s here).
    assert until <= resumed.created_at < until + timedelta(seconds=1)
    agent.refresh_from_db()
    assert agent.state == AgentState.RUNNING and agent.paused_until is None
    assert agent.next_run == first.slot + timedelta(minutes=60)  # the slot it held, not a burst
    assert CycleRun.objects.filter(agent=agent).count() == 1


# --- deadlines ------------------------------------------------------------------------------------


def test_a_cycle_that_ignores_its_deadline_is_stopped_by_the_django_q_timeout(procs, settings):
    # The hard timeout is the agent's timeout_seconds plus this margin, set where tasks are queued
    # (here, and in the dispatcher) and so carried by each task to the cluster.
    settings.RUNNER_HARD_TIMEOUT_MARGIN_SECONDS = 2
    procs.env["RUNNER_HARD_TIMEOUT_MARGIN_SECONDS"] = "2"
    procs.start_all()
    # One checkpoint, then a 60 s sleep that never looks at the 1 s deadline.
    agent = AgentFactory(
        kind="test-slow", parameters={"seconds": 60, "step": 60}, timeout_seconds=1
    )
    services.agent_start(agent=agent, actor=ACTOR)
    wait_for(lambda: run_of(agent, status="running"), timeout=10, message="cycle")
    ended = wait_for(lambda: run_of(agent, status="timed_out"), timeout=10, message="hard stop")
    assert ended.error_type == "HardTimeout"
    assert ended.finished_at - ended.started_at < timedelta(seconds=1 + 2 + 1.5)
    wait_for(lambda: "reincarnated worker" in procs.all_output(), timeout=5, message="new worker")

    services.agent_update_config(
        agent=agent, values={"parameters": {"seconds": 0.1, "step": 0.05}}, actor=ACTOR
    )
    make_due(agent, timezone.now())
    wait_for(lambda: run_of(agent, status="succeeded"), timeout=10, message="next cycle")
    assert_none_running(agent)


# --- crashes, zombies and lost connections (PostgreSQL) ---------------------------------------------


@pytest.mark.postgres
def test_kill_9_of_the_worker_is_reaped_by_the_next_claim_and_the_next_cycle_runs(procs):
    procs.start_all()
    agent = AgentFactory(kind="test-slow", parameters={"seconds": 60}, timeout_seconds=120)
    services.agent_start(agent=agent, actor=ACTOR)
    running = wait_for(lambda: run_of(agent, status="running"), timeout=10, message="cycle")

    os.kill(worker_pid(running), signal.SIGKILL)
    killed_at = timezone.now()
    services.agent_update_config(agent=agent, values={"parameters": {"seconds": 0.2}}, actor=ACTOR)
    time.sleep(LEASE_SECONDS + HEARTBEAT)  # the dead worker's lease runs out
    make_due(agent, timezone.now())
    # The next slot's claim, in the cluster, reaps the dead run before it starts the new one.
    nxt = wait_for(lambda: run_of(agent, status="succeeded"), timeout=10, message="next cycle")
    abandoned = CycleRun.objects.get(pk=running.pk)
    assert abandoned.status == RunStatus.ABANDONED and abandoned.error_type == "LeaseExpired"
    assert killed_at + timedelta(seconds=LEASE_SECONDS - HEARTBEAT) <= abandoned.finished_at
    assert abandoned.finished_at <= nxt.started_at
    agent.refresh_from_db()
    assert agent.consecutive_failures == 0 and agent.error_count == 1
    assert agent.state == AgentState.RUNNING
    assert_none_running(agent)


@pytest.mark.postgres
def test_a_sigstopped_worker_resumed_after_its_lease_expired_cannot_write(procs):
    procs.start_all()
    # One long sleep between checkpoints: once resumed the agent returns success at once, and
    # only the fencing token stands between that stale result and the database.
    agent = AgentFactory(kind="test-slow", parameters={"seconds": 4, "step": 4})
    services.agent_start(agent=agent, actor=ACTOR)
    running = wait_for(lambda: run_of(agent, status="running"), timeout=10, message="cycle")
    time.sleep(0.5)  # past its one checkpoint, into the long sleep
    pid = worker_pid(running)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(LEASE_SECONDS + HEARTBEAT)  # its lease runs out while it is stopped
        assert monitoring.watchdog()["reaped"] == 1  # the periodic task, as a cluster runs it
        reaped = run_of(agent, pk=running.pk, status="abandoned")
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(
        lambda: "was discarded" in procs.all_output(), timeout=10, message="the zombie's write"
    )
    assert "(succeeded) was discarded" in procs.all_output()
    after = CycleRun.objects.get(pk=running.pk)
    assert after.status == RunStatus.ABANDONED
    assert after.finished_at == reaped.finished_at and after.summary == {}
    agent.refresh_from_db()
    assert agent.run_count == 1 and agent.success_count == 0


@pytest.mark.postgres
def test_the_runner_recovers_when_the_database_kills_its_connections(procs):
    procs.start_all()
    agent = AgentFactory(kind="test-slow", parameters={"seconds": 1.5, "step": 0.05})
    services.agent_start(agent=agent, actor=ACTOR)
    hit = wait_for(lambda: run_of(agent, status="running"), timeout=10, message="cycle")
    time.sleep(0.3)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (terminated,) = cursor.fetchone()
    assert terminated >= 1
    settled = wait_for(
        lambda: CycleRun.objects.filter(pk=hit.pk).exclude(status=RunStatus.RUNNING).first(),
        timeout=LEASE_SECONDS * 3,
        message="the interrupted cycle to settle",
    )
    # Its next checkpoint found the connection dead, reconnected, and the cycle carried on.
    assert "lost its connection; reconnecting" in procs.all_output()
    assert settled.status == RunStatus.SUCCEEDED, settled.error_message

    services.agent_update_config(agent=agent, values={"parameters": {"seconds": 0.1}}, actor=ACTOR)
    make_due(agent, timezone.now())
    nxt = wait_for(
        lambda: CycleRun.objects.filter(agent=agent, pk__gt=hit.pk, status="succeeded").first(),
        timeout=20,
        message="a cycle after the connections were killed",
    )
    assert nxt.status == RunStatus.SUCCEEDED
    assert_none_running(agent)


# --- many clusters, many due slots (PostgreSQL) -----------------------------------------------------


@pytest.mark.postgres
def test_three_clusters_never_overlap_one_agent_and_run_each_slot_at_most_once(procs):
    procs.start_all(clusters=3, dispatchers=2)
    agents = [
        AgentFactory(kind="test-slow", parameters={"seconds": 0.3, "step": 0.05}) for _ in range(4)
    ]
    for agent in agents:
        services.agent_start(agent=agent, actor=ACTOR)

    # For a few seconds every agent is due again and again, and every slot is also sent twice
    # more by hand, as a redelivery or a second scheduler would.
    until = time.monotonic() + 6
    while time.monotonic() < until:
        for agent in agents:
            slot = make_due(agent, timezone.now())
            for _ in range(2):
                async_task(scheduling.SCHEDULED_TASK, agent.pk, slot=slot.isoformat())
        time.sleep(0.4)
    for agent in agents:
        services.agent_stop(agent=agent, actor=ACTOR)
    wait_for(
        lambda: not CycleRun.objects.filter(status__in=["running", "queued"]).exists(),
        timeout=15,
        message="all cycles to end",
    )

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, a.status, a.started_at, a.finished_at,
                   b.id, b.status, b.started_at, b.finished_at
            FROM runner_cyclerun a JOIN runner_cyclerun b
              ON a.agent_id = b.agent_id AND a.id < b.id
            WHERE a.started_at IS NOT NULL AND b.started_at IS NOT NULL
              AND a.started_at < b.finished_at AND b.started_at < a.finished_at
            """
        )
        assert cursor.fetchall() == [], "two runs of one agent overlapped in time"
        cursor.execute(
            "SELECT count(*) FROM (SELECT agent_id, slot FROM runner_cyclerun "
            "WHERE slot IS NOT NULL GROUP BY agent_id, slot HAVING count(*) > 1) dup"
        )
        assert cursor.fetchone() == (0,), "a slot ran twice"
    ran = CycleRun.objects.filter(started_at__isnull=False)
    assert ran.filter(finished_at__isnull=True).count() == 0
    for agent in agents:
        assert ran.filter(agent=agent, status="succeeded").count() >= 3, procs.all_output()
    workers = set(ran.values_list("worker", flat=True))
    assert len(workers) >= 3, "the cycles were spread over several worker processes"


# --- the breaker, seen from a real cluster --------------------------------------------------------


def test_breaker_trips_to_error_and_no_further_cycles_run(procs):
    procs.start_all()
    agent = AgentFactory(kind="test-fail", max_consecutive_failures=2)
    services.agent_start(agent=agent, actor=ACTOR)
    wait_for(lambda: finished(agent, 1), timeout=10, message="the first failure")
    make_due(agent, timezone.now())
    wait_for(lambda: finished(agent, 2), timeout=10, message="the second failure")
    agent.refresh_from_db()
    assert agent.state == AgentState.ERROR
    trip = AuditEvent.objects.get(agent=agent, action="trip")
    assert trip.source == "system" and trip.state_after == "error"
    assert not Schedule.objects.filter(name=scheduling.schedule_name(agent)).exists()
    time.sleep(1.0)
    assert CycleRun.objects.filter(agent=agent).count() == 2
    assert selectors.agent_status(agent)["state"] == "error"
