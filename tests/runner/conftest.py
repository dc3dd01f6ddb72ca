from datetime import timedelta

import pytest
from django.utils import timezone

from runner import execution, services
from runner.actors import Actor
from tests.factories import AgentFactory, UserFactory


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", perms=["runner.view_agent", "runner.control_agent"])


@pytest.fixture
def api_actor(operator):
    return Actor(
        user=operator,
        source="api",
        username=operator.get_username(),
        client_ip="127.0.0.1",
        request_id="req-1",
    )


@pytest.fixture
def run_cycle():
    """Run one manual cycle in-process, the way a worker (or the CLI) would."""

    def _run(agent, actor=None):
        queued = services.agent_run_once(
            agent=agent, actor=actor or Actor.cli(), trigger="cli", enqueue=False
        )
        claim = services.cycle_claim_queued(run_id=queued.pk, worker="test:1")
        run = execution.execute_claim(claim)
        agent.refresh_from_db()
        return run

    return _run


@pytest.fixture
def run_scheduled():
    """Claim and run the agent's due scheduled slot in-process, as the django-q2 task does."""

    def _run(agent, now=None):
        claim = services.cycle_claim_scheduled(agent_id=agent.pk, worker="test:1", now=now)
        run = execution.execute_claim(claim) if claim else None
        agent.refresh_from_db()
        return run

    return _run


@pytest.fixture
def run_with_expired_lease(db, settings):
    """(agent, run): a worker claimed the run and vanished; its lease ran out five seconds ago."""
    agent = AgentFactory()
    queued = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    past = timezone.now() - timedelta(seconds=settings.RUNNER_LEASE_SECONDS + 5)
    services.cycle_claim_queued(run_id=queued.pk, worker="gone:9", now=past)
    return agent, queued


@pytest.fixture(autouse=True)
def no_agent_report_hooks(settings):
    """Runner tests check the runner alone; the agents' report hook has its own tests."""
    settings.RUNNER_REPORT_EXTRAS = []
