"""Live admin pages: the version poll (ETag, 304, ticket, its cost) and what the pages carry.

The browser side (live.js swapping the parts of an open page) is tested in Chromium:
tests/e2e/test_live_browser.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from runner import services
from runner.actors import Actor
from runner.admin import live
from runner.services.run_log import cycle_flush_log
from tests.factories import AgentFactory, CycleRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_versions(settings):
    """No version reused between requests unless a test asks for it."""
    settings.RUNNER_LIVE_VERSION_CACHE_SECONDS = 0
    live.recent_versions._versions.clear()


def live_element(html):
    """The data-* attributes of the page's live element."""
    found = re.search(r'<span id="runner-live"[^>]*>', html)
    assert found, "the page has no live element"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', found.group(0)))


def poll(client, scope, ticket, etag=None):
    headers = {"HTTP_X_RUNNER_LIVE_TICKET": ticket}
    if etag:
        headers["HTTP_IF_NONE_MATCH"] = etag
    return client.get(reverse("runner-live-version", kwargs={"scope": scope}), **headers)


def test_an_agent_page_polls_304_until_its_agent_changes(admin_client):
    agent = AgentFactory(kind="test-ok")
    page = admin_client.get(reverse("admin:runner_agent_change", args=[agent.pk]))
    element = live_element(page.content.decode())
    assert element["scope"] == f"agent-{agent.pk}" and element["poll-seconds"] == "1"
    etag, ticket = element["version"].replace("&quot;", '"'), element["ticket"]

    unchanged = poll(admin_client, element["scope"], ticket, etag)
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged["ETag"] == etag

    services.agent_start(agent=agent, actor=Actor.cli())
    changed = poll(admin_client, element["scope"], ticket, etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert changed.json()["version"] == changed["ETag"].strip('"')
    assert poll(admin_client, element["scope"], ticket, changed["ETag"]).status_code == 304


@pytest.mark.parametrize("scope", ["agents", "runs", "overview"])
def test_the_lists_change_with_any_agent_run_or_event(client, scope):
    ticket = live.ticket_for(AgentFactory.build(pk=1))  # a ticket is all the poll needs
    other = AgentFactory()
    versions = [poll(client, scope, ticket)["ETag"]]
    services.agent_start(agent=other, actor=Actor.cli())  # agent, event and a queued run
    versions.append(poll(client, scope, ticket)["ETag"])
    run = CycleRunFactory(agent=other, status="running", finished_at=None)
    versions.append(poll(client, scope, ticket)["ETag"])
    type(run).objects.filter(pk=run.pk).update(status="failed")  # a status change alone
    versions.append(poll(client, scope, ticket)["ETag"])
    assert len(set(versions)) == 4


def test_an_agent_turning_overdue_changes_the_lists_version_with_no_write(settings):
    settings.RUNNER_OVERDUE_GRACE_SECONDS = 60
    now = timezone.now()
    AgentFactory(state="running", next_run=now - timedelta(seconds=30))
    assert live.compute_version("overview", now) == live.compute_version("overview", now)
    assert live.compute_version("overview", now) != live.compute_version(
        "overview", now + timedelta(seconds=60)
    )


def test_a_run_page_changes_when_its_run_does():
    run = CycleRunFactory(status="running", finished_at=None)
    before = live.compute_version(f"run-{run.pk}")
    type(run).objects.filter(pk=run.pk).update(status="succeeded", finished_at=timezone.now())
    assert live.compute_version(f"run-{run.pk}") != before


def test_an_unchanged_poll_reads_no_session_or_user_and_at_most_the_one_version_query(
    admin_client, settings, django_assert_num_queries
):
    settings.RUNNER_LIVE_VERSION_CACHE_SECONDS = 60
    agent = AgentFactory()
    ticket = live.ticket_for(agent)
    with django_assert_num_queries(1):  # the version; no session, no user, no permissions
        etag = poll(admin_client, "agents", ticket)["ETag"]
    with django_assert_num_queries(0):  # every other tab of this process, for the next second
        for _ in range(20):
            assert poll(admin_client, "agents", ticket, etag).status_code == 304


@pytest.mark.parametrize(
    ("ticket", "scope", "status"),
    [
        ("", "agents", 403),
        ("forged", "agents", 403),
        ("VALID", "bogus", 404),
        ("VALID", "agent-0", 404),
        ("VALID", "agent-x", 404),
        ("VALID", "run-99999999999999999999", 404),
    ],
)
def test_polls_without_a_valid_ticket_or_scope_are_refused_in_json(client, ticket, scope, status):
    if ticket == "VALID":
        ticket = live.ticket_for(AgentFactory())
    response = poll(client, scope, ticket)
    assert response.status_code == status and "detail" in response.json()


def test_a_ticket_older_than_its_lifetime_is_refused(client, settings, monkeypatch):
    settings.RUNNER_LIVE_TICKET_SECONDS = 300
    agent = AgentFactory()
    issued = signing.time.time()
    with monkeypatch.context() as past:
        past.setattr(signing.time, "time", lambda: issued - 301)
        old = live.ticket_for(agent)
    assert poll(client, "agents", old).status_code == 403
    assert poll(client, "agents", live.ticket_for(agent)).status_code == 200


def test_the_poll_is_get_only(client):
    ticket = live.ticket_for(AgentFactory())
    url = reverse("runner-live-version", kwargs={"scope": "agents"})
    assert client.post(url, HTTP_X_RUNNER_LIVE_TICKET=ticket).status_code == 405


def test_the_agent_page_marks_its_live_parts_and_follows_the_run_in_flight(admin_client):
    agent = AgentFactory(kind="test-ok")
    run = services.agent_run_once(agent=agent, actor=Actor.cli(), enqueue=False)
    claim = services.cycle_claim_queued(run_id=run.pk, worker="test:1")
    cycle_flush_log(run_id=run.pk, token=claim.token, lines=[f"line {n}" for n in range(20)])
    html = admin_client.get(reverse("admin:runner_agent_change", args=[agent.pk])).content.decode()
    for region in (
        "runner-state",
        "runner-next-run",
        "runner-last-run",
        "runner-in-flight",
        "runner-counters",
        "runner-buttons",
        "runner-recent-runs",
        "runner-recent-events",
    ):
        assert re.search(rf'id="{region}"[^>]*data-live-region', html), region
    in_flight = html[html.index('id="runner-in-flight"') :]
    assert f"run #{run.pk}" in in_flight and "data-elapsed-since=" in in_flight
    tail = re.search(r'<pre class="runner-pre runner-tail"[^>]*>([^<]*)</pre>', in_flight)
    assert f'data-log-url="/api/runs/{run.pk}/log/"' in tail.group(0)
    assert 'data-after="20"' in tail.group(0) and 'data-keep="12"' in tail.group(0)
    assert tail.group(1).splitlines() == [f"line {n}" for n in range(8, 20)]  # the last 12
    assert "runner/live.js" in html


def test_a_finished_runs_page_shows_its_log_still_and_a_running_one_follows_it(admin_client):
    done = CycleRunFactory(log_lines=["all", "done"])
    html = admin_client.get(reverse("admin:runner_cyclerun_change", args=[done.pk])).content
    assert b"data-log-url" not in html and b"all\ndone" in html
    running = CycleRunFactory(status="running", finished_at=None, log_lines=["going"])
    html = admin_client.get(reverse("admin:runner_cyclerun_change", args=[running.pk])).content
    assert f'data-log-url="/api/runs/{running.pk}/log/" data-after="1"'.encode() in html
    assert live_element(html.decode())["scope"] == f"run-{running.pk}"


def test_the_lists_are_live_and_show_the_run_in_flight(admin_client):
    agent = AgentFactory(slug="busy")
    CycleRunFactory(agent=agent, status="running", finished_at=None)
    html = admin_client.get(reverse("admin:runner_agent_changelist")).content.decode()
    assert live_element(html)["scope"] == "agents"
    assert 'id="runner-live-results" data-live-region' in html
    row = html[html.index(">busy<") :]
    assert "runner-run-running" in row[:2000] and "data-elapsed-since" in row[:2000]
    runs = admin_client.get(reverse("admin:runner_cyclerun_changelist")).content.decode()
    assert live_element(runs)["scope"] == "runs" and "data-elapsed-since" in runs
