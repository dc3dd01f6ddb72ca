"""bench/cycle_cost.py's own parts, run once on the test database so the bench does not rot."""

import pytest

from bench import cycle_cost


@pytest.mark.django_db(transaction=True)
def test_the_bench_runs_a_scheduled_no_op_cycle_within_the_statement_target(settings):
    settings.RUNNER_EXTRA_AGENT_KINDS = {
        **settings.RUNNER_EXTRA_AGENT_KINDS,
        **cycle_cost.NOOP_KIND,
    }
    agent = cycle_cost.noop_agent()
    elapsed, cpu = cycle_cost.one_cycle(agent.pk, cycle_cost.make_due(agent.pk))
    assert elapsed > 0 and cpu > 0
    queries = cycle_cost.captured_cycle(agent.pk, cycle_cost.make_due(agent.pk))
    assert 0 < len(queries) <= cycle_cost.MAX_STATEMENTS
    assert cycle_cost.direct_call(agent.pk) < elapsed
    assert cycle_cost.round_trips(len(queries), agent.pk) > 0
