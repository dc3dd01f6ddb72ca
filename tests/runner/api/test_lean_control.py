"""What a control request and a status read cost in SQL statements, pinned.

Transaction control (BEGIN, COMMIT, savepoints) is left out of the counts: PostgreSQL's driver
does not report it and SQLite's does. Each statement named here is a round trip the request
makes; a change that adds one shows up as a failure naming the statements.
"""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ, Schedule

from runner.models import AuditEvent
from tests.runner.api.conftest import token_client

pytestmark = pytest.mark.django_db(transaction=True)

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")


def statements(captured):
    return [
        query["sql"]
        for query in captured
        if not query["sql"].lstrip().upper().startswith(TRANSACTION_CONTROL)
    ]


def request_statements(call):
    with CaptureQueriesContext(connection) as context:
        response = call()
    return response, statements(context.captured_queries)


def test_start_takes_eight_statements(operator, agent):
    """Token, permissions, throttle, the agent locked by slug, its update, the schedule upsert,
    the task row and the audit event (SQLite upserts the schedule in two statements)."""
    api = token_client(operator)
    response, sql = request_statements(lambda: api.post("/api/agents/alpha/start/"))
    assert response.status_code == 200, response.content
    expected = 8 if connection.vendor == "postgresql" else 9
    assert len(sql) == expected, "\n".join(sql)
    locks = [s for s in sql if "runner_agent" in s and s.lstrip().startswith("SELECT")]
    assert len(locks) == 1 and '"slug" =' in locks[0]  # one read of the agent: the lock
    if connection.vendor == "postgresql":
        assert "FOR UPDATE" in locks[0]
    # the due cycle's task row was written with the state change
    assert OrmQ.objects.count() == 1
    assert Schedule.objects.filter(name=f"runner:agent:{agent.pk}").count() == 1
    assert AuditEvent.objects.filter(action="start", outcome="applied").count() == 1


def test_seed_start_takes_as_many_statements_as_the_api(operator, default_agent):
    api = token_client(operator)
    response, sql = request_statements(lambda: api.post("/api/agent/start"))
    assert response.status_code == 200, response.content
    assert len(sql) == (8 if connection.vendor == "postgresql" else 9), "\n".join(sql)


def test_a_refused_start_is_audited_once_in_five_statements(operator, agent):
    api = token_client(operator)
    api.post("/api/agents/alpha/start/")
    response, sql = request_statements(lambda: api.post("/api/agents/alpha/start/"))
    assert response.status_code == 409
    assert len(sql) == 5, "\n".join(sql)  # token, permissions, throttle, lock, refused event
    assert AuditEvent.objects.filter(action="start", outcome="refused").count() == 1


@pytest.mark.parametrize("path", ["/api/agents/alpha/status/", "/api/agent/status"])
def test_status_reads_never_write(operator, agent, default_agent, path):
    api = token_client(operator)
    api.post("/api/agents/alpha/start/")
    response, sql = request_statements(lambda: api.get(path))
    assert response.status_code == 200
    writes = [s for s in sql if s.lstrip().upper().startswith(WRITES)]
    assert writes == []
    assert not any("FOR UPDATE" in s for s in sql)
    assert len(sql) <= 6, "\n".join(sql)


def test_a_start_rolled_back_leaves_no_task_row(operator, agent):
    """The task row is part of the request's transaction (ORM broker): both or neither."""
    from runner import services
    from runner.actors import Actor

    with pytest.raises(RuntimeError), transaction.atomic():
        services.agent_start(agent="alpha", actor=Actor.cli())
        assert OrmQ.objects.count() == 1
        raise RuntimeError("the caller's transaction fails")
    assert OrmQ.objects.count() == 0
    agent.refresh_from_db()
    assert agent.state == "stopped"


def test_an_unknown_slug_is_404_and_audited_once(operator):
    api = token_client(operator)
    response = api.post("/api/agents/nobody/start/", {"reason": "try"}, format="json")
    assert response.status_code == 404
    event = AuditEvent.objects.get()
    assert (event.agent_slug, event.outcome, event.reason) == ("nobody", "refused", "try")
