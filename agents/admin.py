"""Read-only admin for the forecaster's records: they are written by cycles, never by hand.

Viewing needs the model's own view permission or `runner.view_agent` (the permission that shows
the agents themselves). Lists filter by agent and by run.
"""

from django.contrib import admin

from agents.models import (
    Forecast,
    MarketObservation,
    MarketResolution,
    PaperAccount,
    PaperFill,
    PaperPosition,
    TradeDecision,
)
from runner.models import CycleRun


class RunFilter(admin.SimpleListFilter):
    """Offers the latest runs; any run id also works from the URL (`?run=123`)."""

    title = "run"
    parameter_name = "run"

    def lookups(self, request, model_admin):
        runs = CycleRun.objects.select_related("agent").order_by("-id")[:20]
        return [(str(r.pk), f"#{r.pk} {r.agent.slug} {r.status}") for r in runs]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(run_id=int(value))


class ReadOnlyAdmin(admin.ModelAdmin):
    list_filter = ("agent", RunFilter)
    list_select_related = ("agent",)
    list_per_page = 50

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("runner.view_agent") or super().has_view_permission(
            request, obj
        )

    def has_module_permission(self, request):
        return request.user.has_perm("runner.view_agent") or super().has_module_permission(request)


@admin.register(MarketObservation)
class MarketObservationAdmin(ReadOnlyAdmin):
    list_display = (
        "market_id",
        "question",
        "is_sample",
        "source",
        "tradeable",
        "rank",
        "yes_price",
        "liquidity",
        "untradeable_reason",
        "run",
        "captured_at",
    )
    list_filter = ("agent", RunFilter, "source", "is_sample", "tradeable")
    search_fields = ("market_id", "question", "slug")
    list_select_related = ("agent", "run")


@admin.register(Forecast)
class ForecastAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "market",
        "forecaster",
        "status",
        "probability",
        "confidence",
        "market_price",
        "total_tokens",
        "run",
        "created_at",
    )
    list_filter = ("agent", RunFilter, "forecaster", "status")
    list_select_related = ("agent", "market", "run")
    search_fields = ("market__question", "market__market_id", "error")


@admin.register(TradeDecision)
class TradeDecisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "market", "approved", "side", "edge", "size", "price", "reason", "run")
    list_filter = ("agent", RunFilter, "approved", "side")
    list_select_related = ("agent", "market", "run")
    search_fields = ("market__question", "market__market_id", "reason")


@admin.register(PaperFill)
class PaperFillAdmin(ReadOnlyAdmin):
    list_display = ("id", "market_id", "side", "shares", "price", "cost", "run", "created_at")
    list_select_related = ("agent", "run")


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyAdmin):
    list_display = ("market_id", "question", "is_sample", "side", "shares", "cost", "updated_at")
    list_filter = ("agent", "is_sample", "side")


@admin.register(PaperAccount)
class PaperAccountAdmin(ReadOnlyAdmin):
    list_display = ("agent", "cash", "initial_balance", "updated_at")
    list_filter = ("agent",)


@admin.register(MarketResolution)
class MarketResolutionAdmin(ReadOnlyAdmin):
    """How markets ended (`manage.py resolvemarkets`); SAMPLE resolutions are made up."""

    list_display = (
        "market_id",
        "question",
        "is_sample",
        "source",
        "outcome",
        "yes_price",
        "resolved_at",
        "recorded_at",
    )
    list_filter = ("source", "is_sample", "outcome")
    list_select_related = ()
    search_fields = ("market_id", "question")
