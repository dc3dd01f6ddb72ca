"""The admin's versions page (list, diff, restore) and the agent page's budgets."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from runner import execution, services
from runner.actors import Actor
from runner.models import Agent, AuditEvent
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("midday_zone")]


def messages_of(response):
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def versioned(db):
    agent = services.agent_create(
        values={"slug": "gamma", "kind": "test-ok", "parameters": {"value": 1}}, actor=Actor.cli()
    )
    services.agent_update_config(
        agent=agent, values={"parameters": {"value": 7}}, actor=Actor.cli(), reason="try 7"
    )
    return agent


def versions_url(agent, **query):
    url = reverse("runner-agent-versions", kwargs={"agent_id": agent.pk})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def restore_url(agent, number):
    return reverse("runner-agent-version-restore", kwargs={"agent_id": agent.pk, "number": number})


def test_the_page_lists_versions_and_shows_a_diff_between_any_two(admin_client, versioned):
    page = admin_client.get(versions_url(versioned, a=1, b=2)).content.decode()
    assert 'id="version-2"' in page and "2 (current)" in page and "try 7" in page
    assert "From version 1 to version 2" in page
    assert "<code>parameters.value</code></td><td>changed</td><td><code>1</code>" in page
    # Every version but the current one offers a restore (a POST form with its CSRF token).
    assert page.count("Restore this version") == 1
    assert restore_url(versioned, 1) in page and "csrfmiddlewaretoken" in page
    change_page = admin_client.get(reverse("admin:runner_agent_change", args=[versioned.pk]))
    assert versions_url(versioned) in change_page.content.decode()


def test_restore_from_the_admin_is_audited_and_makes_the_next_version(
    admin_client, admin_user, versioned
):
    response = admin_client.post(restore_url(versioned, 1), {"reason": "7 was worse"})
    assert response.status_code == 302 and response.url == versions_url(versioned)
    assert ("success", "Version 1 of gamma restored; it is now version 3.") in messages_of(response)
    versioned.refresh_from_db()
    assert versioned.parameters == {"value": 1}
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.source, event.actor, event.reason) == (
        "restore_version",
        "admin",
        admin_user,
        "7 was worse",
    )


def test_a_refused_restore_says_why_and_changes_nothing(admin_client, versioned, settings):
    settings.TRADING_MODE = "live"
    services.agent_update_config(
        agent=versioned, values={"trading_mode": "live"}, actor=Actor.cli()
    )
    services.agent_update_config(
        agent=versioned, values={"trading_mode": "dry_run"}, actor=Actor.cli()
    )
    settings.TRADING_MODE = "dry_run"
    response = admin_client.post(restore_url(versioned, 3), {})
    [(level, text)] = messages_of(response)
    assert level == "error" and text.startswith("Restore of version 3 refused: trading_mode:")
    assert Agent.objects.get(pk=versioned.pk).trading_mode == "dry_run"
    assert AuditEvent.objects.order_by("-id").first().outcome == "refused"


def test_restore_needs_the_change_permission_and_a_forged_one_is_audited(client, versioned):
    viewer = UserFactory(username="looker", perms=["runner.view_agent"])
    client.force_login(viewer)
    page = client.get(versions_url(versioned)).content.decode()
    assert "Restore this version" not in page
    assert client.post(restore_url(versioned, 1), {"reason": "sneaky"}).status_code == 403
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.outcome, event.actor_username, event.reason) == (
        "restore_version",
        "refused",
        "looker",
        "sneaky",
    )
    assert event.refusal_reason == "Permission denied: runner.change_agent is required."
    assert client.get(restore_url(versioned, 1)).status_code == 405


def test_the_agent_page_shows_each_budget_against_todays_usage(admin_client, versioned):
    services.agent_update_config(
        agent=versioned, values={"budgets": {"cycles_per_day": 4}}, actor=Actor.cli()
    )
    queued = services.agent_run_once(agent=versioned, actor=Actor.cli(), enqueue=False)
    execution.run_queued(queued.pk)
    page = admin_client.get(reverse("admin:runner_agent_change", args=[versioned.pk]))
    html = page.content.decode()
    assert 'id="runner-budgets"' in html and "<code>cycles_per_day</code>" in html
    assert 'value="25"' in html and "1 cycles (25%)" in html and "3 cycles" in html


def test_bad_budgets_in_the_form_are_field_errors(admin_client, versioned):
    data = {
        "name": versioned.name,
        "kind": "test-ok",
        "parameters": '{"value": 7}',
        "interval_minutes": "60",
        "timeout_seconds": "300",
        "max_consecutive_failures": "3",
        "trading_mode": "dry_run",
        "budgets": '{"cycles_per_day": -1}',
    }
    response = admin_client.post(reverse("admin:runner_agent_change", args=[versioned.pk]), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert (
        "cycles_per_day must be a whole number from 1 to 1e+06 (cycles); got -1."
        in (errors["budgets"][0])
    )
    assert Agent.objects.get(pk=versioned.pk).budgets == {}


def test_a_runs_page_links_to_the_version_it_ran_with(admin_client, versioned):
    queued = services.agent_run_once(agent=versioned, actor=Actor.cli(), enqueue=False)
    run = execution.run_queued(queued.pk)
    html = admin_client.get(reverse("admin:runner_cyclerun_change", args=[run.pk])).content.decode()
    assert f'<a href="{versions_url(versioned)}#version-2">version 2</a>' in html
