"""The forecaster's records, each linked to the cycle run that wrote it.

One run writes: every market it saw (with the source, capture time and whether it was sample
data), a forecast per analysed market (with the forecaster's name), a trade decision per
successful forecast (approved or rejected, with edge, size and reason), and a paper fill per
approved decision. Paper balance and positions are kept per agent across runs.

Amounts are USD floats rounded to cents: this is paper trading research, not an exchange ledger.
"""

from django.db import models
from django.db.models import Q


class Side(models.TextChoices):
    YES = "yes", "Yes"
    NO = "no", "No"


class MarketObservation(models.Model):
    """One market as loaded by one run ("markets seen")."""

    run = models.ForeignKey("runner.CycleRun", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("runner.Agent", on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=32, help_text="snapshot (SAMPLE data) or gamma (live)")
    is_sample = models.BooleanField(help_text="True when the market came from the SAMPLE snapshot.")
    captured_at = models.DateTimeField()
    market_id = models.CharField(max_length=100, blank=True, default="")
    question = models.TextField(blank=True, default="")
    slug = models.CharField(max_length=300, blank=True, default="")
    end_date = models.DateTimeField(null=True, blank=True)
    yes_price = models.FloatField(null=True, blank=True)
    no_price = models.FloatField(null=True, blank=True)
    liquidity = models.FloatField(default=0)
    volume = models.FloatField(default=0)
    tradeable = models.BooleanField(default=False)
    untradeable_reason = models.CharField(max_length=300, blank=True, default="")
    rank = models.PositiveIntegerField(null=True, blank=True, help_text="1 = analysed first.")

    class Meta:
        ordering = ["-captured_at", "-id"]
        indexes = [
            models.Index(fields=["run", "tradeable"], name="marketobs_run_tradeable"),
            # The latest price of a held market (budgets mark paper positions with it).
            models.Index(
                fields=["agent", "market_id", "captured_at"], name="marketobs_agent_market"
            ),
        ]

    def __str__(self):
        label = " [SAMPLE]" if self.is_sample else ""
        return f"{self.market_id}{label} {self.question[:60]}"


class Forecast(models.Model):
    """A forecaster's answer for one market in one run; a failed forecast keeps its reason."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    run = models.ForeignKey("runner.CycleRun", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("runner.Agent", on_delete=models.CASCADE, related_name="+")
    market = models.ForeignKey(
        MarketObservation, on_delete=models.CASCADE, related_name="forecasts"
    )
    forecaster = models.CharField(max_length=32)
    model = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=8, choices=Status.choices)
    probability = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    reasoning = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    market_price = models.FloatField(help_text="YES price when the forecast was made.")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__isnull=True) | Q(probability__gte=0, probability__lte=1),
                name="forecast_probability_unit_interval",
            ),
            models.CheckConstraint(
                condition=Q(status="failed") | Q(probability__isnull=False),
                name="forecast_ok_has_probability",
            ),
        ]
        indexes = [models.Index(fields=["agent", "created_at"], name="forecast_agent_created")]

    def __str__(self):
        return f"{self.forecaster} {self.status} p={self.probability}"


class TradeDecision(models.Model):
    """The risk step's verdict on one forecast: approved with a size, or rejected with a reason."""

    run = models.ForeignKey("runner.CycleRun", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("runner.Agent", on_delete=models.CASCADE, related_name="+")
    forecast = models.OneToOneField(Forecast, on_delete=models.CASCADE, related_name="decision")
    market = models.ForeignKey(MarketObservation, on_delete=models.CASCADE, related_name="+")
    approved = models.BooleanField()
    side = models.CharField(max_length=4, choices=Side.choices, blank=True, default="")
    edge = models.FloatField(help_text="Forecast probability minus the YES price.")
    kelly = models.FloatField(help_text="Full-Kelly fraction for the side.")
    size = models.FloatField(help_text="USD staked (0 when rejected).")
    price = models.FloatField(help_text="Price of one share of the side.")
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(size__gte=0), name="decision_size_not_negative"),
            models.CheckConstraint(
                condition=Q(approved=True) | Q(size=0), name="decision_rejected_has_no_size"
            ),
        ]
        indexes = [models.Index(fields=["agent", "created_at"], name="decision_agent_created")]

    def __str__(self):
        verdict = "approved" if self.approved else "rejected"
        return f"{verdict} {self.side} {self.size:.2f} ({self.reason})"


class PaperAccount(models.Model):
    """An agent's paper balance. Created with `initial_balance` the first time the agent trades."""

    agent = models.OneToOneField("runner.Agent", on_delete=models.CASCADE, related_name="+")
    initial_balance = models.FloatField()
    cash = models.FloatField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(cash__gte=0), name="paper_cash_not_negative")
        ]

    def __str__(self):
        return f"{self.agent_id}: {self.cash:.2f} USD cash"


class PaperFill(models.Model):
    """A dry-run fill of an approved decision at the market price. Never a real order."""

    run = models.ForeignKey("runner.CycleRun", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("runner.Agent", on_delete=models.CASCADE, related_name="+")
    decision = models.OneToOneField(TradeDecision, on_delete=models.CASCADE, related_name="fill")
    market_id = models.CharField(max_length=100)
    side = models.CharField(max_length=4, choices=Side.choices)
    price = models.FloatField()
    shares = models.FloatField()
    cost = models.FloatField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.shares:.4f} {self.side} @ {self.price:.4f}"


class PaperPosition(models.Model):
    """Open paper shares of one side of one market for one agent, at cost."""

    agent = models.ForeignKey("runner.Agent", on_delete=models.CASCADE, related_name="+")
    market_id = models.CharField(max_length=100)
    question = models.TextField(blank=True, default="")
    is_sample = models.BooleanField(default=False)
    side = models.CharField(max_length=4, choices=Side.choices)
    shares = models.FloatField()
    cost = models.FloatField()
    # Positions outlive pruned runs, so these links fall back to null rather than cascading.
    opened_run = models.ForeignKey(
        "runner.CycleRun", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_run = models.ForeignKey(
        "runner.CycleRun", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "market_id", "side"], name="paperposition_unique_market_side"
            ),
        ]

    def __str__(self):
        return f"{self.market_id} {self.side}: {self.shares:.4f} shares, {self.cost:.2f} USD"


class MarketResolution(models.Model):
    """How a market ended: its final YES price (1 yes, 0 no, 0.5 a split), once per market.

    Recorded by `manage.py resolvemarkets` from Gamma's closed markets, or from the shipped SAMPLE
    resolutions (`--sample`, `is_sample`), and joined to the forecasts made before `resolved_at`
    to score them (agents/scoring.py). Keyed like observations: (source, market id).
    """

    source = models.CharField(max_length=32, help_text="snapshot (SAMPLE data) or gamma (live)")
    market_id = models.CharField(max_length=100)
    question = models.TextField(blank=True, default="")
    is_sample = models.BooleanField(help_text="True for the made-up SAMPLE resolutions.")
    yes_price = models.FloatField(help_text="Final YES price: 1 resolved YES, 0 NO, 0.5 a split.")
    outcome = models.CharField(max_length=100, help_text="The winning outcome's name, or split.")
    resolved_at = models.DateTimeField(help_text="When the market closed (Gamma closedTime).")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-resolved_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "market_id"], name="resolution_one_per_market"
            ),
            models.CheckConstraint(
                condition=Q(yes_price__gte=0, yes_price__lte=1),
                name="resolution_price_unit_interval",
            ),
        ]

    def __str__(self):
        label = " [SAMPLE]" if self.is_sample else ""
        return f"{self.market_id}{label} resolved {self.outcome} ({self.yes_price:g})"
