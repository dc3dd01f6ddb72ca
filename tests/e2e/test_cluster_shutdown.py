"""A real `manage.py qcluster` under a process manager's SIGTERM: it exits within its grace period,
and the cycle it was running ends `cancelled` (or finished), never left `running`.

systemd's default (KillMode=control-group) sends SIGTERM to every process of the service at once,
as `kill -TERM -<pgid>` does here: the cluster is started in its own session, so its process group
is exactly the cluster's processes. Before runner.cluster_stop such a cluster hung in its signal
handler, and its cycle stayed `running` until the lease ran out.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runner import services
from runner.actors import Actor
from runner.cluster_stop import STOP_SEQUENCE_SECONDS
from runner.models import CycleRun, RunStatus
from tests.factories import AgentFactory
from tests.support.processes import LEASE_SECONDS, Processes, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GRACE_SECONDS = 20


@pytest.fixture
def procs(transactional_db, tmp_path, settings):
    settings.RUNNER_LEASE_SECONDS = LEASE_SECONDS
    processes = Processes(tmp_path, workers=2)
    processes.env["RUNNER_SHUTDOWN_GRACE_SECONDS"] = str(GRACE_SECONDS)
    yield processes
    processes.stop_all()


def start_cycle(procs, *, kind, parameters):
    """Start a cluster, queue one manual cycle and wait until a worker runs it and has logged."""
    cluster = procs.start_cluster()
    agent = AgentFactory(kind=kind, parameters=parameters, timeout_seconds=600)
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), reason="shutdown test")
    wait_for(
        lambda: (
            CycleRun.objects.filter(pk=queued.pk, status=RunStatus.RUNNING)
            .exclude(log_lines=[])
            .exists()
        ),
        timeout=30,
        message="the cycle to run and flush its first log line",
    )
    return cluster, queued.pk


def children(pid):
    """The processes whose parent is `pid`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(proc.name))
    return found


def stop_and_time(cluster, *, target, timeout):
    """SIGTERM to the cluster's process group, its main process or its Sentinel (the main
    process's one child); how it exited and how long that took."""
    started = time.monotonic()
    if target == "group":
        os.killpg(cluster.pid, signal.SIGTERM)
    elif target == "main":
        cluster.send_signal(signal.SIGTERM)
    else:
        (sentinel,) = children(cluster.pid)
        os.kill(sentinel, signal.SIGTERM)
    try:
        code = cluster.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"qcluster still running {timeout} s after SIGTERM") from None
    return code, time.monotonic() - started


def group_is_gone(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("target", ["group", "main", "sentinel"])
def test_sigterm_cancels_the_cycle_at_its_checkpoint_and_the_cluster_exits(procs, target):
    """SIGTERM to the whole group (systemd's default), to the main process alone (`kill <pid>`,
    systemd's KillMode=mixed) or to the Sentinel alone: the cluster passes it on to its workers."""
    cluster, run_id = start_cycle(
        procs, kind="test-chatty", parameters={"steps": 300, "every": 0.1}
    )

    code, took = stop_and_time(cluster, target=target, timeout=GRACE_SECONDS)

    assert code == 0, procs.output(cluster)
    # A cooperative cycle stops at its next checkpoint: well inside the grace period.
    assert took < GRACE_SECONDS / 2, f"took {took:.1f} s"
    wait_for(lambda: group_is_gone(cluster.pid), timeout=10, message="every cluster process")
    run = CycleRun.objects.get(pk=run_id)
    assert run.status == RunStatus.CANCELLED
    assert "shutting down (SIGTERM)" in run.error_message
    assert run.finished_at is not None and run.lease_expires_at is not None
    assert any("step 1 of 300" in line for line in run.log_lines)
    assert not CycleRun.objects.filter(status=RunStatus.RUNNING).exists()
    # The main process says why it stops; told by its Sentinel instead, it just follows.
    assert ("got SIGTERM" in procs.output(cluster)) == (target != "sentinel")


def test_a_cycle_that_never_checkpoints_is_killed_after_the_grace_and_recorded_cancelled(procs):
    grace = 3
    procs.env["RUNNER_SHUTDOWN_GRACE_SECONDS"] = str(grace)
    cluster, run_id = start_cycle(procs, kind="test-stubborn", parameters={"seconds": 300})

    code, took = stop_and_time(cluster, target="group", timeout=grace + STOP_SEQUENCE_SECONDS)

    assert code == 0, procs.output(cluster)
    assert grace <= took < grace + STOP_SEQUENCE_SECONDS, f"took {took:.1f} s"
    wait_for(lambda: group_is_gone(cluster.pid), timeout=10, message="every cluster process")
    run = CycleRun.objects.get(pk=run_id)
    assert run.status == RunStatus.CANCELLED
    assert run.error_type == "WorkerShutdown"
    assert f"RUNNER_SHUTDOWN_GRACE_SECONDS ({grace} s)" in run.error_message
    assert any("sleeping 300" in line for line in run.log_lines)  # flushed before the kill
    assert run.agent.run_count == 1 and run.agent.error_count == 0
