"""`manage.py runagent logs RUN_ID [--follow]`: a run's log lines, followed live while it runs."""

from __future__ import annotations

import json
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from runner import execution, services
from runner.actors import Actor
from runner.models import CycleRun
from tests.factories import AgentFactory, CycleRunFactory
from tests.support.processes import wait_for


def runagent(*args):
    out, err = StringIO(), StringIO()
    call_command("runagent", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_follow_prints_every_line_once_while_the_cycle_runs_and_exits_with_its_outcome(settings):
    settings.RUNNER_LOG_FLUSH_SECONDS = 0.1
    settings.RUNNER_LIVE_POLL_SECONDS = 0.05
    agent = AgentFactory(kind="test-chatty", parameters={"steps": 12, "every": 0.1})
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)

    def worker():  # the cycle, in its own thread and connection, as a qcluster worker runs it
        try:
            execution.run_queued(queued.pk)
        finally:
            connection.close()

    cycle = threading.Thread(target=worker)
    cycle.start()
    try:
        # The worker writes its lines while it runs (with the heartbeat), not only at the end.
        wait_for(
            lambda: (
                CycleRun.objects.filter(pk=queued.pk, status="running")
                .exclude(log_lines=[])
                .exists()
            ),
            timeout=10,
            message="a line of the running cycle",
        )
        out, err = runagent("logs", str(queued.pk), "--follow")
    finally:
        cycle.join(timeout=30)
    run = CycleRun.objects.get(pk=queued.pk)
    assert run.status == "succeeded"
    assert out.splitlines() == run.log_lines  # each line exactly once, in order
    assert sum("step" in line for line in run.log_lines) == 12
    assert f"run {run.pk} of {agent.slug} ended: succeeded" in err


@pytest.mark.django_db
def test_without_follow_it_prints_what_there_is_and_json_numbers_the_lines():
    run = CycleRunFactory(status="running", log_lines=["first", "second"])
    out, _ = runagent("logs", str(run.pk))
    assert out.splitlines() == ["first", "second"]
    out, _ = runagent("logs", str(run.pk), "--json")
    assert [json.loads(line) for line in out.splitlines()] == [
        {"run": run.pk, "number": 1, "text": "first"},
        {"run": run.pk, "number": 2, "text": "second"},
    ]


@pytest.mark.django_db
def test_following_a_run_that_failed_exits_1():
    run = CycleRunFactory(status="failed", log_lines=["boom"])
    with pytest.raises(CommandError) as failed:
        runagent("logs", str(run.pk), "--follow")
    assert failed.value.returncode == 1 and f"run {run.pk} failed" in str(failed.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["logs"], "RUN_ID must be a whole number from 1 to 9223372036854775807 (got None)."),
        (
            ["logs", "abc"],
            "RUN_ID must be a whole number from 1 to 9223372036854775807 (got 'abc').",
        ),
        (["logs", "0"], "RUN_ID must be a whole number from 1 to 9223372036854775807 (got '0')."),
        (["logs", "99999"], "No run with id 99999."),
        (["status", "--follow"], "--follow goes with `logs RUN_ID` only."),
    ],
)
def test_bad_input_exits_1_with_the_reason(args, message):
    with pytest.raises(CommandError) as refused:
        runagent(*args)
    assert str(refused.value) == message and refused.value.returncode == 1
