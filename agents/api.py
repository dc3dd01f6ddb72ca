"""Read-only API for the forecaster's records: `/api/forecasts/` and `/api/decisions/`.

Newest first, paginated, filterable by run id and agent slug. Viewing needs `runner.view_agent`
or the record's own view permission; authentication is the project default (session, token).
"""

import django_filters
from rest_framework import serializers, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission

from agents.models import Forecast, MarketObservation, PaperFill, TradeDecision


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
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


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
    run = django_filters.NumberFilter(field_name="run_id")
    agent = django_filters.CharFilter(field_name="agent__slug")

    class Meta:
        model = Forecast
        fields = ["run", "agent", "forecaster", "status"]


class DecisionFilter(django_filters.FilterSet):
    run = django_filters.NumberFilter(field_name="run_id")
    agent = django_filters.CharFilter(field_name="agent__slug")
    # Strict, so `?approved=maybe` is a 400 naming the field rather than silently ignored.
    approved = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true"
    )

    class Meta:
        model = TradeDecision
        fields = ["run", "agent", "approved", "side"]


class ForecastViewSet(viewsets.ReadOnlyModelViewSet):
    """Forecasts made by agents' cycles, newest first. `market.is_sample` marks SAMPLE data."""

    queryset = Forecast.objects.select_related("agent", "market").order_by("-created_at", "-id")
    serializer_class = ForecastSerializer
    permission_classes = [CanViewAgentRecords]
    pagination_class = RecordPagination
    filterset_class = ForecastFilter


class DecisionViewSet(viewsets.ReadOnlyModelViewSet):
    """Trade decisions (approved or rejected, with edge, size and reason), newest first."""

    queryset = TradeDecision.objects.select_related("agent", "market", "fill").order_by(
        "-created_at", "-id"
    )
    serializer_class = DecisionSerializer
    permission_classes = [CanViewAgentRecords]
    pagination_class = RecordPagination
    filterset_class = DecisionFilter
