"""The forecaster's output for the runner's reports (hooked in by RUNNER_REPORT_EXTRAS).

Counts what the agent produced in the window, aggregated in the database. Paper exposure is the
cost of the open paper positions now, since positions outlive the window they were opened in.
"""

from django.db.models import Count, Q, Sum

from agents.models import Forecast, PaperFill, PaperPosition, TradeDecision


def forecaster_output(agent, since, until) -> dict:
    window = Q(created_at__gte=since, created_at__lt=until)
    scope = Q(agent=agent) if agent is not None else Q()
    forecasts = Forecast.objects.filter(scope & window).aggregate(
        n_ok=Count("id", filter=Q(status=Forecast.Status.OK)),
        n_failed=Count("id", filter=~Q(status=Forecast.Status.OK)),
    )
    decisions = TradeDecision.objects.filter(scope & window).aggregate(
        n_approved=Count("id", filter=Q(approved=True)),
        n_rejected=Count("id", filter=Q(approved=False)),
    )
    rejection_reasons = list(
        TradeDecision.objects.filter(scope & window, approved=False)
        .values("reason")
        .annotate(count=Count("id"))
        .order_by("-count", "reason")[:5]
    )
    fills = PaperFill.objects.filter(scope & window).aggregate(
        n_fills=Count("id"), total_cost=Sum("cost")
    )
    exposure = (
        PaperPosition.objects.filter(scope).aggregate(total_cost=Sum("cost"))["total_cost"] or 0.0
    )
    return {
        "forecasts": forecasts["n_ok"],
        "forecasts_failed": forecasts["n_failed"],
        "decisions_approved": decisions["n_approved"],
        "decisions_rejected": decisions["n_rejected"],
        "top_rejection_reasons": rejection_reasons,
        "paper_fills": fills["n_fills"],
        "paper_fill_cost": round(fills["total_cost"] or 0.0, 2),
        "paper_exposure": round(exposure, 2),
    }
