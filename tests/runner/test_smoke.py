import pytest

from runner import execution, services
from runner.actors import Actor
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def test_cli_style_cycle_succeeds_and_counts():
    agent = AgentFactory(kind="test-ok", parameters={"value": 7})
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), trigger="cli", enqueue=False)
    claim = services.cycle_claim_queued(run_id=queued.pk, worker="t:1")
    run = execution.execute_claim(claim)
    agent.refresh_from_db()
    assert run.status == "succeeded"
    assert run.summary == {"value": 7, "mode": "dry_run"}
    assert agent.run_count == 1 and agent.success_count == 1
