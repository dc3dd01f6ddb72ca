"""A due cycle starts on an idle worker of any cluster, not behind a busy one (real subprocesses).

django-q2's pusher takes a task from the broker as soon as its cluster's task queue has room and
then waits to hand it to a worker, so a cluster whose workers are all busy used to hold due cycles
while another cluster had a worker free (the issue: 9 of 39 runs 10-46 s late). These tests run
real `qcluster`s (2 workers each) and dispatchers against the test database, on the ORM broker and
on Redis, and check what `runner.cluster` promises: a cluster takes a task only when one of its
workers is free, so a busy cluster leaves due cycles in the broker for the others, loses nothing,
and an idle one still runs every task.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.tasks import async_task

from runner import periodic, scheduling, services
from runner.actors import Actor
from runner.models import Agent, AgentState, CycleRun, RunStatus
from tests.factories import AgentFactory
from tests.support.processes import LEASE_SECONDS, Processes, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/4")
# A cycle counts as on time when it starts within this of its slot: the dispatcher and the
# pushers poll every 0.2 s, so it is a few hundred ms when a worker is free; the margin is for a
# loaded machine. A cycle held behind a busy cluster used to wait until a worker there finished,
# or until the dispatcher resent its slot (after max(lease, 5 s)), whichever came first.
ON_TIME = timedelta(seconds=2)
BROKERS = ["orm", "redis"]


@pytest.fixture
def procs(transactional_db, tmp_path, settings):
    settings.RUNNER_LEASE_SECONDS = LEASE_SECONDS
    processes = Processes(tmp_path)
    yield processes
    processes.stop_all()


@pytest.fixture(params=BROKERS)
def broker(request, procs, monkeypatch):
    """The broker of this test, for the subprocesses and for this process's async_task."""
    if request.param == "redis":
        if not redis_available():
            pytest.skip(f"Redis is not reachable at {REDIS_URL}")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        procs.env["REDIS_URL"] = REDIS_URL
        # django-q2 read its settings at import: switch this process's broker the same way.
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    return request.param


def redis_available():
    from urllib.parse import urlsplit

    url = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((url.hostname, url.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


def waiting_in_broker(broker) -> int:
    """Tasks in the broker that no cluster has taken yet."""
    if broker == "redis":
        import redis

        return redis.Redis.from_url(REDIS_URL).llen(f"django_q:{Conf.CLUSTER_NAME}:q")
    return OrmQ.objects.filter(lock__lte=timezone.now()).count()


def sleeper(seconds, slot):
    """A running agent (started earlier) whose next slot is `slot` and whose cycle sleeps."""
    agent = AgentFactory(
        kind="test-slow",
        parameters={"seconds": seconds, "step": 0.1},
        interval_minutes=1,
        state=AgentState.RUNNING,
    )
    with transaction.atomic():
        locked = Agent.objects.select_for_update().get(pk=agent.pk)
        locked.next_run = slot
        locked.save(update_fields=["next_run"])
        scheduling.sync_schedule(locked)
    return locked


def send_slot(agent):
    """Queue the agent's due slot by hand, the way the dispatcher does."""
    return async_task(
        scheduling.SCHEDULED_TASK,
        agent.pk,
        slot=agent.next_run.isoformat(),
        q_options=scheduling.task_options(agent.timeout_seconds),
    )


def run_of_slot(agent, slot):
    return CycleRun.objects.filter(agent=agent, slot=slot).first()


def lateness(runs) -> str:
    return ", ".join(
        f"agent {r.agent_id} {r.status} {(r.started_at - r.slot).total_seconds():+.2f}s on {r.worker}"
        if r.started_at
        else f"agent {r.agent_id} {r.status}"
        for r in runs
    )


def fill_and_overflow(broker, busy_seconds):
    """Both workers of the one cluster busy, then two more slots due: returns (busy, due, slot)
    after checking that the two stayed in the broker, untaken."""
    now = timezone.now()
    busy = [sleeper(busy_seconds, now) for _ in range(2)]
    due = [sleeper(0.2, now) for _ in range(2)]
    for agent in busy:
        send_slot(agent)
    for agent in busy:
        wait_for(lambda a=agent: run_of_slot(a, now), timeout=10, message="the busy cycles")
    for agent in due:
        send_slot(agent)
    # A pusher that takes a task does it within one poll (0.2 s); give it several.
    time.sleep(1.5)
    assert waiting_in_broker(broker) == 2, "a cluster with no free worker took a due task"
    assert not CycleRun.objects.filter(agent__in=due).exists()
    return busy, due, now


def test_a_busy_cluster_leaves_due_cycles_in_the_broker_and_loses_none(procs, broker):
    """One cluster, both workers busy: two more due slots stay in the broker (django-q2's pusher
    took both, one into its task queue and one into its own hand), then run once a worker is
    free; and the idle cluster still runs a task that is not a cycle."""
    procs.start_cluster()
    busy, due, now = fill_and_overflow(broker, busy_seconds=4)

    # Nothing is lost: as the busy cycles end, the held-back slots run, each once.
    for agent in due:
        run = wait_for(
            lambda a=agent: CycleRun.objects.filter(agent=a, status="succeeded").first(),
            timeout=15,
            message="a held-back cycle",
        )
        assert run.slot == now
    busy_ends = [run_of_slot(a, now).finished_at for a in busy]
    for agent in due:
        run = run_of_slot(agent, now)
        # it started right after a worker came free, not a poll interval (or a resend) later
        assert run.started_at - min(busy_ends) < ON_TIME, lateness([run])
    assert waiting_in_broker(broker) == 0
    assert CycleRun.objects.count() == 4

    # A task that is not a cycle (here the watchdog, a periodic job) runs as before.
    task_id = async_task(periodic.WATCHDOG.func)
    done = wait_for(lambda: Task.objects.filter(id=task_id).first(), timeout=10, message="watchdog")
    assert done.success, done.result


def test_a_worker_killed_while_waiting_leaves_the_gate_exact(procs):
    """kill -9 of an idle worker leaves its count behind (it was waiting); the cluster's next
    hand-over drops it, so the cluster still takes no more tasks than it has workers."""
    procs.start_cluster()
    probe = sleeper(0.1, timezone.now())
    send_slot(probe)
    ran = wait_for(
        lambda: CycleRun.objects.filter(agent=probe, finished_at__isnull=False).first(),
        timeout=10,
        message="a first cycle",
    )
    time.sleep(0.5)  # its worker is back, waiting for the next task
    os.kill(int(ran.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    wait_for(lambda: "reincarnated worker" in procs.all_output(), timeout=10, message="new worker")
    time.sleep(0.5)  # the new worker is waiting too: three counted, two there

    fill_and_overflow("orm", busy_seconds=3)


@pytest.mark.postgres
def test_due_cycles_start_on_any_idle_worker_of_three_clusters(procs, broker):
    """The issue's drill at test scale: three clusters of two workers and two dispatchers. While
    one cluster's workers are both busy, cycles due one after another must start on the other
    clusters' free workers; then, all idle, six due at once must take all six workers. Every
    cycle starts within ON_TIME of its slot, each slot runs once, none is skipped."""
    # Cluster A starts alone, so it is the one that takes the two long cycles.
    procs.start_cluster("cluster-a")
    now = timezone.now()
    hogs = [sleeper(120, now) for _ in range(2)]
    for agent in hogs:
        send_slot(agent)
    for agent in hogs:
        wait_for(lambda a=agent: run_of_slot(a, now), timeout=10, message="A's long cycles")
    procs.start_cluster("cluster-b", wait=False)
    procs.start_cluster("cluster-c", wait=False)
    procs.start_dispatcher("dispatcher-1", wait=False)
    procs.start_dispatcher("dispatcher-2", wait=False)
    procs.wait_ready()

    # Ten 1.5 s cycles, one due every 0.5 s: at most three run at once, and clusters B and C have
    # four free workers. A cluster that took one while busy (A, as django-q2's pusher would)
    # would hold it until the dispatcher resends it, 5 s later.
    t0 = timezone.now() + timedelta(seconds=1.5)
    wave = [
        (sleeper(1.5, t0 + timedelta(seconds=0.5 * i)), t0 + timedelta(seconds=0.5 * i))
        for i in range(10)
    ]
    wait_for(lambda: all_finished(wave), timeout=30, message="the wave of cycles")
    for agent in hogs:
        services.agent_stop(agent=agent, actor=Actor.cli())
    wait_for(
        lambda: not CycleRun.objects.filter(agent__in=hogs, status="running").exists(),
        timeout=10,
        message="A's long cycles to stop",
    )

    # All six workers idle: six cycles due at once. Only an even 2/2/2 spread starts them all.
    t1 = timezone.now() + timedelta(seconds=1.5)
    burst = [(sleeper(2, t1), t1) for _ in range(6)]
    wait_for(lambda: all_finished(burst), timeout=20, message="the burst of cycles")

    runs = [run_of_slot(a, s) for a, s in wave + burst]
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * len(runs), lateness(runs)
    assert all(r.started_at >= r.slot for r in runs), "a cycle never starts before its slot"
    delays = sorted((r.started_at - r.slot).total_seconds() for r in runs)
    print(
        f"slot -> start over {len(runs)} cycles: median {delays[len(delays) // 2]:.2f}s, max {delays[-1]:.2f}s"
    )
    late = [r for r in runs if r.started_at - r.slot >= ON_TIME]
    assert not late, f"{len(late)} of {len(runs)} started late: {lateness(late)}"
    assert len({r.worker for r in runs[10:]}) == 6, "the burst ran on all six workers"
    assert not CycleRun.objects.filter(status=RunStatus.SKIPPED).exists()
    assert CycleRun.objects.exclude(agent__in=hogs).count() == len(runs), "a slot ran twice"


def all_finished(pairs) -> bool:
    return all(getattr(run_of_slot(a, s), "finished_at", None) is not None for a, s in pairs)
