"""The worker side of the live tail: the heartbeat writes a running cycle's lines in batches."""

import pytest
from django.utils import timezone

from runner import services
from runner.actors import Actor
from runner.execution import Heartbeat, RunLog
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def claimed():
    agent = AgentFactory(kind="test-ok")
    run = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    return services.cycle_claim_queued(run_id=run.pk, worker="test:1")


def test_a_batch_of_lines_is_one_update_and_nothing_new_is_no_query(django_assert_num_queries):
    claim = claimed()
    log = RunLog(claim.run.pk, claim.run.agent.slug, cap=500)
    beat = Heartbeat(claim.run.pk, claim.token, timezone.now(), log=log)
    for n in range(100):
        log.info("line %s", n)
    with django_assert_num_queries(1):
        assert beat._flush(beat._unflushed_lines())
    assert beat._unflushed_lines() is None  # nothing new: the next tick writes nothing
    claim.run.refresh_from_db()
    assert len(claim.run.log_lines) == 100 and claim.run.log_lines[-1].endswith("INFO line 99")
    log.info("one more")
    assert beat._flush(beat._unflushed_lines())
    claim.run.refresh_from_db()
    assert len(claim.run.log_lines) == 101


def test_lines_past_the_cap_are_not_written_while_running_and_counted_at_the_end():
    claim = claimed()
    log = RunLog(claim.run.pk, claim.run.agent.slug, cap=3)
    beat = Heartbeat(claim.run.pk, claim.token, timezone.now(), log=log)
    for n in range(5):
        log.info("line %s", n)
    assert beat._flush(beat._unflushed_lines())
    claim.run.refresh_from_db()
    assert len(claim.run.log_lines) == 3
    # The finish appends the count after the same three lines: a reader's cursor stays valid.
    assert log.stored_lines()[:3] == claim.run.log_lines
    assert log.stored_lines()[3] == "... 2 more lines not kept (cap 3)"


def test_the_flush_interval_sets_the_heartbeat_tick(settings):
    settings.RUNNER_LEASE_SECONDS = 30
    settings.RUNNER_LOG_FLUSH_SECONDS = 2
    claim = claimed()
    log = RunLog(claim.run.pk, claim.run.agent.slug, cap=10)
    assert Heartbeat(claim.run.pk, claim.token, timezone.now(), log=log).interval == 2
    assert Heartbeat(claim.run.pk, claim.token, timezone.now()).interval == 10
