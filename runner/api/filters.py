"""Strict query filters for the API: run history, audit trail, forecaster records (bad values 400)."""

import datetime

import django_filters
import django_filters.rest_framework
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import ChoiceField, IsoDateTimeField
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError as DRFValidationError

from runner.models import (
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditSource,
    CycleRun,
    RunStatus,
    RunTrigger,
)

EMPTY_VALUE_MESSAGE = "Give a value, or leave the parameter out."
# Ids are 64-bit signed integers in every database; a larger number is a 400, not an overflow.
ID_MAX = 2**63 - 1


class _PresentMeansSet:
    """A parameter that is present must have a value: `?status=` is refused, not ignored."""

    def clean(self, value):
        if value == "":
            raise ValidationError(EMPTY_VALUE_MESSAGE, code="empty")
        return super().clean(value)


class StrictChoiceField(_PresentMeansSet, ChoiceField):
    pass


class StrictCharField(_PresentMeansSet, forms.CharField):
    pass


class StrictIdField(_PresentMeansSet, forms.IntegerField):
    """A record id: a whole number from 1 to ID_MAX (the form field's message names the range)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=ID_MAX, **kwargs)


class StrictIsoDateTimeField(_PresentMeansSet, IsoDateTimeField):
    """An ISO 8601 time, normalised to UTC: every database accepts it whatever offset was given."""

    def clean(self, value):
        value = super().clean(value)
        return to_utc(value) if value is not None else None


def to_utc(value):
    try:
        return value.astimezone(datetime.UTC)
    except (OverflowError, ValueError):
        raise ValidationError("Time out of range.", code="out_of_range") from None


class ChoiceFilter(django_filters.ChoiceFilter):
    field_class = StrictChoiceField


@extend_schema_field({"type": "string", "minLength": 1})
class CharFilter(django_filters.CharFilter):
    field_class = StrictCharField


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": ID_MAX})
class IdFilter(django_filters.NumberFilter):
    field_class = StrictIdField


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = StrictIsoDateTimeField


class RunFilter(django_filters.FilterSet):
    agent = CharFilter(field_name="agent__slug", help_text="Agent slug.")
    status = ChoiceFilter(choices=RunStatus.choices)
    trigger = ChoiceFilter(choices=RunTrigger.choices)
    since = IsoDateTimeFilter(
        field_name="queued_at", lookup_expr="gte", help_text="Queued at or after (ISO 8601)."
    )
    until = IsoDateTimeFilter(
        field_name="queued_at", lookup_expr="lt", help_text="Queued before (ISO 8601)."
    )

    class Meta:
        model = CycleRun
        fields = ["agent", "status", "trigger", "since", "until"]


class AuditEventFilter(django_filters.FilterSet):
    agent = CharFilter(field_name="agent_slug", help_text="Agent slug.")
    action = ChoiceFilter(choices=AuditAction.choices)
    outcome = ChoiceFilter(choices=AuditOutcome.choices)
    source = ChoiceFilter(choices=AuditSource.choices)
    actor = CharFilter(field_name="actor_username", help_text="Username.")
    since = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="At or after (ISO 8601)."
    )
    until = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Before (ISO 8601)."
    )

    class Meta:
        model = AuditEvent
        fields = ["agent", "action", "outcome", "source", "actor", "since", "until"]


def check_query_params(request, allowed):
    """400 naming the parameter for an unknown, repeated or NUL-carrying query parameter, so a
    misspelt filter (`?stauts=failed`) never answers as if it had worked."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        message = f"Unknown query parameter. Allowed: {', '.join(sorted(allowed))}."
        raise DRFValidationError({name or "(empty name)": [message] for name in unknown})
    for name, values in request.query_params.lists():
        if len(values) > 1:
            raise DRFValidationError({name: ["Give this parameter once."]})
        if "\x00" in values[0]:
            raise DRFValidationError({name: ["Must not contain NUL characters."]})


class StrictQueryFilterBackend(django_filters.rest_framework.DjangoFilterBackend):
    """DjangoFilterBackend that answers 400 to an unknown query parameter instead of ignoring it.

    The view's filters are allowed, and so are its paginator's own parameters."""

    always_allowed = frozenset({"format"})
    paginator_params = ("cursor_query_param", "page_query_param", "page_size_query_param")

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        allowed = set(self.always_allowed)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        paginator = getattr(view, "paginator", None)
        allowed |= {getattr(paginator, name, None) for name in self.paginator_params} - {None}
        check_query_params(request, allowed)
        return super().filter_queryset(request, queryset, view)
