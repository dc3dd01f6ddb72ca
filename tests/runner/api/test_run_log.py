"""`GET /api/runs/{id}/log/?after=N`: the live tail of a run over the API.

A cycle is claimed and its lines are written the way its worker writes them (batches through
runner.services.run_log, then the finish), with polls of the endpoint in between.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import services
from runner.actors import Actor
from runner.services.run_log import cycle_flush_log
from runner.types import Outcome
from tests.factories import AgentFactory, CycleRunFactory, UserFactory
from tests.runner.api.conftest import token_client

pytestmark = pytest.mark.django_db


def url(run_id, after=None):
    return f"/api/runs/{run_id}/log/" + ("" if after is None else f"?after={after}")


def claimed_run():
    """A manual run a worker has just claimed (running, its log empty)."""
    agent = AgentFactory(kind="test-ok")
    run = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    return services.cycle_claim_queued(run_id=run.pk, worker="test:1")


def poll(api, run_id, after):
    response = api.get(url(run_id, after))
    assert response.status_code == 200, response.content
    return response.json()


def test_each_line_comes_exactly_once_across_polls_and_the_last_poll_says_the_run_ended(api):
    claim = claimed_run()
    run_id, token = claim.run.pk, claim.token
    seen, cursor = [], 0

    def drain():
        nonlocal cursor
        body = poll(api, run_id, cursor)
        seen.extend(line["text"] for line in body["lines"])
        assert [line["number"] for line in body["lines"]] == list(
            range(cursor + 1, body["next"] + 1)
        )
        cursor = body["next"]
        return body

    lines = [f"line {n}" for n in range(1, 8)]
    assert drain()["lines"] == [] and not drain()["ended"]
    assert cycle_flush_log(run_id=run_id, token=token, lines=lines[:3])
    first = drain()
    assert first["status"] == "running" and first["ended"] is False and first["next"] == 3
    assert drain()["lines"] == []  # nothing new: nothing again
    assert cycle_flush_log(run_id=run_id, token=token, lines=lines[:5])
    drain()
    final = [*lines, "... 2 more lines not kept (cap 7)"]
    assert services.cycle_finish(
        run_id=run_id,
        token=token,
        outcome=Outcome(status="succeeded", summary={}, log_lines=final),
    )
    last = drain()
    assert last["ended"] is True and last["status"] == "succeeded"
    assert seen == final  # every line, once, in order
    assert drain() == {**last, "after": 8, "lines": []}


@settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=8),
    polls=st.lists(st.integers(min_value=0, max_value=3), min_size=8, max_size=8),
)
def test_whatever_the_batches_and_polls_the_reader_gets_the_whole_log_once(api, batches, polls):
    claim = claimed_run()
    kept, seen, cursor = [], [], 0
    for batch, times in zip(batches, polls, strict=False):
        kept += [f"{len(kept) + n}" for n in range(batch)]
        assert cycle_flush_log(run_id=claim.run.pk, token=claim.token, lines=kept)
        for _ in range(times):
            body = poll(api, claim.run.pk, cursor)
            seen += [line["text"] for line in body["lines"]]
            cursor = body["next"]
    services.cycle_finish(
        run_id=claim.run.pk,
        token=claim.token,
        outcome=Outcome(status="failed", error_type="X", log_lines=[*kept, "end"]),
    )
    body = poll(api, claim.run.pk, cursor)
    seen += [line["text"] for line in body["lines"]]
    assert body["ended"] and seen == [*kept, "end"]


def test_an_unchanged_answer_is_a_304_and_a_new_line_a_200(api):
    claim = claimed_run()
    cycle_flush_log(run_id=claim.run.pk, token=claim.token, lines=["a"])
    first = api.get(url(claim.run.pk, 1))
    etag = first["ETag"]
    assert first.status_code == 200 and first.json()["lines"] == []
    again = api.get(url(claim.run.pk, 1), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    cycle_flush_log(run_id=claim.run.pk, token=claim.token, lines=["a", "b"])
    changed = api.get(url(claim.run.pk, 1), HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["lines"] == [{"number": 2, "text": "b"}]
    assert changed["ETag"] != etag
    # The run ending changes the answer too, even with no new line.
    services.cycle_finish(
        run_id=claim.run.pk,
        token=claim.token,
        outcome=Outcome(status="cancelled", log_lines=["a", "b"]),
    )
    ended = api.get(url(claim.run.pk, 2), HTTP_IF_NONE_MATCH=changed["ETag"])
    assert ended.status_code == 200 and ended.json()["ended"] is True


def test_a_worker_that_lost_the_run_cannot_write_its_lines():
    claim = claimed_run()
    assert not cycle_flush_log(run_id=claim.run.pk, token=claim.token + 1, lines=["zombie"])
    claim.run.refresh_from_db()
    assert claim.run.log_lines == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=-1", "after"),
        ("after=", "after"),
        ("after=two", "after"),
        ("after=1.5", "after"),
        (f"after={2**63}", "after"),
        ("after=1&after=2", "after"),
        ("before=3", "before"),
        ("after=1&format=json", "format"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_parameter(api, query, field):
    run = CycleRunFactory()
    response = api.get(f"/api/runs/{run.pk}/log/?{query}")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]


def test_unknown_runs_are_404_and_credentials_and_permission_are_needed(api, client):
    run = CycleRunFactory(log_lines=["one"])
    assert api.get(url(run.pk + 1000)).status_code == 404
    assert api.get(url(2**63)).json() == {"detail": "No run with that id."}
    assert api.get("/api/runs/-1/log/").status_code == 404
    assert client.get(url(run.pk)).status_code == 401
    nobody = token_client(UserFactory(username="nobody"))
    assert nobody.get(url(run.pk)).status_code == 403
    body = api.get(url(run.pk)).json()
    assert body["lines"] == [{"number": 1, "text": "one"}] and body["agent"] == run.agent.slug
