import pytest
from django.urls import reverse

from agents.models import Forecast, MarketObservation, PaperPosition, TradeDecision
from tests.agents.factories import ForecastFactory, TradeDecisionFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MODELS = [
    "marketobservation",
    "forecast",
    "tradedecision",
    "paperfill",
    "paperposition",
    "paperaccount",
]


@pytest.fixture
def viewer(client):
    client.force_login(UserFactory(perms=["runner.view_agent"]))
    return client


@pytest.mark.parametrize("model", MODELS)
def test_changelists_open_for_viewers_and_offer_no_add(viewer, model):
    ForecastFactory()
    response = viewer.get(reverse(f"admin:agents_{model}_changelist"))
    assert response.status_code == 200
    assert reverse(f"admin:agents_{model}_add") not in response.content.decode()
    assert viewer.get(reverse(f"admin:agents_{model}_add")).status_code == 403


def test_records_cannot_be_changed_or_deleted(viewer):
    forecast = ForecastFactory(reasoning="kept as it was")
    change = reverse("admin:agents_forecast_change", args=[forecast.pk])
    page = viewer.get(change)
    assert page.status_code == 200 and "kept as it was" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    viewer.post(change, {"reasoning": "rewritten"})
    forecast.refresh_from_db()
    assert forecast.reasoning == "kept as it was"
    delete = reverse("admin:agents_forecast_delete", args=[forecast.pk])
    assert viewer.post(delete, {"post": "yes"}).status_code == 403
    assert Forecast.objects.filter(pk=forecast.pk).exists()


def test_filter_by_run_and_agent(viewer):
    mine, other = TradeDecisionFactory(), TradeDecisionFactory()
    url = reverse("admin:agents_tradedecision_changelist")
    by_run = viewer.get(url, {"run": mine.run_id})
    assert by_run.status_code == 200
    assert list(by_run.context["cl"].queryset) == [mine]
    by_agent = viewer.get(url, {"agent__id__exact": other.agent_id})
    assert list(by_agent.context["cl"].queryset) == [other]
    assert list(viewer.get(url, {"run": "x"}).context["cl"].queryset) == []


def test_users_without_view_permission_are_refused(client):
    client.force_login(UserFactory(perms=[]))
    url = reverse("admin:agents_marketobservation_changelist")
    assert client.get(url).status_code == 403
    for model in (MarketObservation, TradeDecision, PaperPosition):
        assert model.objects.count() == 0


@pytest.mark.parametrize("model", ["marketobservation", "paperfill"])
def test_record_lists_load_their_runs_in_the_page_query(
    viewer, model, django_assert_max_num_queries
):
    """The run column costs no query per row, however many rows a page shows."""
    from tests.agents.factories import PaperFillFactory

    def page_queries(rows):
        for _ in range(rows):
            PaperFillFactory()  # a fill, with its decision, market observation and run
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert viewer.get(reverse(f"admin:agents_{model}_changelist")).status_code == 200
        return len(queries)

    assert page_queries(1) == page_queries(5)
