"""Links from a record to the rows of other apps that point at it."""

import pytest

from runner.models import CycleRun
from tests.factories import CycleRunFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_run_detail_lists_related_models_of_other_apps():
    """Every model with a ForeignKey to CycleRun shows up (the agents app's records, when present)."""
    from django.apps import apps

    from runner.admin.base import related_record_links

    pointing = {
        model
        for model in apps.get_models()
        for field in model._meta.fields
        if field.is_relation and field.related_model is CycleRun
    }
    run = CycleRunFactory()

    class Request:
        user = UserFactory(is_superuser=True)

    from django.contrib import admin

    labels = {link["label"] for link in related_record_links(Request(), run, admin.site)}
    expected = {f"{m._meta.app_label}: {m._meta.verbose_name_plural}" for m in pointing}
    assert labels == expected
