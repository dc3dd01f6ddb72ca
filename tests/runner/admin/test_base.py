"""Links from a record to the rows of other apps that point at it."""

import pytest
from django.contrib import admin
from django.urls import reverse

from runner.admin.base import related_record_links
from runner.models import CycleRun
from tests.agents.factories import PaperPositionFactory
from tests.factories import CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db


class Request:
    def __init__(self, user):
        self.user = user


def links_of(run):
    request = Request(UserFactory(username="viewer", is_superuser=True))
    return related_record_links(request, run, admin.site)


def test_run_detail_lists_related_models_of_other_apps():
    """Every ForeignKey to CycleRun shows up once (the agents app's records, when present)."""
    from django.apps import apps

    pointing = [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.fields
        if field.is_relation and field.related_model is CycleRun
    ]
    per_model = {model: sum(1 for m, _ in pointing if m is model) for model, _ in pointing}
    labels = [link["label"] for link in links_of(CycleRunFactory())]
    expected = [
        f"{model._meta.app_label}: {model._meta.verbose_name_plural}"
        + (f" ({field.verbose_name})" if per_model[model] > 1 else "")
        for model, field in pointing
    ]
    assert sorted(labels) == sorted(expected)
    assert len(set(labels)) == len(labels)


def test_a_model_pointing_at_the_run_twice_gets_one_link_per_meaning(admin_client):
    """A paper position names the run that opened it and the run that last touched it: two links,
    each labelled by what it means and filtering on its own field."""
    run, other = CycleRunFactory(), CycleRunFactory()
    agent = run.agent
    opened_here = PaperPositionFactory(agent=agent, opened_run=run, last_run=run)
    touched_here = PaperPositionFactory(agent=agent, opened_run=other, last_run=run)
    PaperPositionFactory(agent=agent, opened_run=other, last_run=other)

    positions = {link["label"]: link for link in links_of(run) if "paper position" in link["label"]}
    assert sorted(positions) == [
        "agents: paper position (opened run)",
        "agents: paper positions (last run)",
    ]
    opened = positions["agents: paper position (opened run)"]
    last = positions["agents: paper positions (last run)"]
    assert (opened["count"], last["count"]) == (1, 2)

    def listed(url):
        response = admin_client.get(url)
        assert response.status_code == 200
        return {position.pk for position in response.context["cl"].result_list}

    assert listed(opened["url"]) == {opened_here.pk}
    assert listed(last["url"]) == {opened_here.pk, touched_here.pk}


def test_run_page_shows_each_paper_position_link_once(admin_client):
    run = CycleRunFactory()
    html = admin_client.get(reverse("admin:runner_cyclerun_change", args=[run.pk])).content.decode()
    assert html.count("Agents: paper positions (opened run):") == 1
    assert html.count("Agents: paper positions (last run):") == 1
    assert "Agents: paper positions:" not in html
