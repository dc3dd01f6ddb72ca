"""Read-only API for the forecaster's records: `/api/forecasts/` and `/api/decisions/`.

Newest first, paginated, filterable by run id and agent slug. Viewing needs `runner.view_agent`
or the record's own view permission; authentication is the project default (session, token).
Query parameters are as strict as the runner API's: unknown, empty or out-of-range is a 400.
"""

import re

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission

from agents.models import Forecast, MarketObservation, PaperFill, TradeDecision
from runner.api import docs
from runner.api.filters import ID_MAX, CharFilter, ChoiceFilter, IdFilter, StrictQueryFilterBackend


class CanViewAgentRecords(BasePermission):
    message = "You need the runner.view_agent permission (or view permission on these records)."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        meta = view.queryset.model._meta
        return user.has_perm("runner.view_agent") or user.has_perm(
            f"{meta.app_label}.view_{meta.model_name}"
        )


class RecordPagination(PageNumberPagination):
    """`?page=` and `?page_size=` must be whole numbers in range (400 naming them, where DRF
    would ignore a bad page_size); a page past the end is still a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()  # the schema documents an integer, so `?page=last` is refused

    def _whole_number(self, request, name, maximum):
        text = request.query_params.get(name)
        if text is None:
            return None
        if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= maximum:
            raise ValidationError({name: [f"{name} must be a whole number from 1 to {maximum}."]})
        return int(text)

    def get_page_size(self, request):
        size = self._whole_number(request, self.page_size_query_param, self.max_page_size)
        return size or self.page_size

    def get_page_number(self, request, paginator):
        return self._whole_number(request, self.page_query_param, ID_MAX) or 1

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        maximum = {self.page_query_param: ID_MAX, self.page_size_query_param: self.max_page_size}
        for parameter in parameters:
            parameter["schema"].update(minimum=1, maximum=maximum[parameter["name"]])
        return parameters


class MarketSerializer(serializers.ModelSerializer):
    class Meta:
        model = MarketObservation
        fields = [
            "id",
            "market_id",
            "question",
            "source",
            "is_sample",
            "captured_at",
            "end_date",
            "yes_price",
            "no_price",
            "liquidity",
            "volume",
            "rank",
        ]


class ForecastSerializer(serializers.ModelSerializer):
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    market = MarketSerializer(read_only=True)

    class Meta:
        model = Forecast
        fields = [
            "id",
            "run",
            "agent",
            "market",
            "forecaster",
            "model",
            "status",
            "probability",
            "confidence",
            "reasoning",
            "error",
            "market_price",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "attempts",
            "latency_ms",
            "created_at",
        ]


class FillSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaperFill
        fields = ["id", "side", "price", "shares", "cost", "created_at"]


class DecisionSerializer(serializers.ModelSerializer):
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    market = MarketSerializer(read_only=True)
    fill = FillSerializer(read_only=True, allow_null=True)

    class Meta:
        model = TradeDecision
        fields = [
            "id",
            "run",
            "agent",
            "forecast",
            "market",
            "approved",
            "side",
            "edge",
            "kelly",
            "size",
            "price",
            "reason",
            "fill",
            "created_at",
        ]


class ForecastFilter(django_filters.FilterSet):
    run = IdFilter(field_name="run_id", help_text="Cycle run id.")
    agent = CharFilter(field_name="agent__slug", help_text="Agent slug.")
    forecaster = CharFilter()
    status = ChoiceFilter(choices=Forecast.Status.choices)

    class Meta:
        model = Forecast
        fields = ["run", "agent", "forecaster", "status"]


class DecisionFilter(django_filters.FilterSet):
    run = IdFilter(field_name="run_id", help_text="Cycle run id.")
    agent = CharFilter(field_name="agent__slug", help_text="Agent slug.")
    # Strict, so `?approved=maybe` is a 400 naming the field rather than silently ignored.
    approved = ChoiceFilter(choices=[("true", "true"), ("false", "false")], method="by_approved")
    side = ChoiceFilter(choices=TradeDecision._meta.get_field("side").choices)

    class Meta:
        model = TradeDecision
        fields = ["run", "agent", "approved", "side"]

    def by_approved(self, queryset, name, value):
        return queryset.filter(approved=value == "true")


class RecordViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [CanViewAgentRecords]
    pagination_class = RecordPagination
    filter_backends = [StrictQueryFilterBackend]


def documented(serializer_class):
    """The list's and the record's answers, errors included, as the runner API documents them."""
    return extend_schema_view(
        list=extend_schema(responses={200: serializer_class(many=True), **docs.LIST_ERRORS}),
        retrieve=extend_schema(responses={200: serializer_class, **docs.READ_ERRORS}),
    )


@documented(ForecastSerializer)
class ForecastViewSet(RecordViewSet):
    """Forecasts made by agents' cycles, newest first. `market.is_sample` marks SAMPLE data."""

    queryset = Forecast.objects.select_related("agent", "market").order_by("-created_at", "-id")
    serializer_class = ForecastSerializer
    filterset_class = ForecastFilter


@documented(DecisionSerializer)
class DecisionViewSet(RecordViewSet):
    """Trade decisions (approved or rejected, with edge, size and reason), newest first."""

    queryset = TradeDecision.objects.select_related("agent", "market", "fill").order_by(
        "-created_at", "-id"
    )
    serializer_class = DecisionSerializer
    filterset_class = DecisionFilter
