"""One row per cycle of an agent: who asked, when it ran, where, with what, and how it ended."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from runner.choices import RunStatus, RunTrigger, TradingMode


class CycleRun(models.Model):
    """One cycle of one agent: who asked, when it ran, where, with what, and how it ended."""

    agent = models.ForeignKey("Agent", on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    control_event = models.ForeignKey(
        "AuditEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    slot = models.DateTimeField(
        null=True, blank=True, help_text="The scheduled time this cycle was for (scheduled runs)."
    )
    missed_slots = models.PositiveIntegerField(
        default=0, help_text="Scheduled slots passed over (downtime) and folded into this run."
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, default="", help_text="host:pid")
    task_id = models.CharField(max_length=64, blank=True, default="", help_text="django-q2 task id")
    fencing_token = models.PositiveBigIntegerField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    trading_mode = models.CharField(
        max_length=16, choices=TradingMode.choices, default=TradingMode.DRY_RUN
    )
    config_snapshot = models.JSONField(default=dict, blank=True)
    config_version = models.ForeignKey(
        "AgentConfigVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The numbered configuration version this cycle ran with.",
    )
    summary = models.JSONField(default=dict, blank=True)
    error_type = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    log_lines = models.JSONField(default=list, blank=True)
    # Run policies (runner/services/policies.py)
    attempt = models.PositiveSmallIntegerField(
        default=0, help_text="0 for the first run of a slot; 1, 2, ... for its retries."
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="A retry waits for its backoff until this time."
    )
    policy_note = models.CharField(
        max_length=300, blank=True, default="", help_text="Why a policy ran, delayed or ended it."
    )
    parameter_overrides = models.JSONField(
        default=dict, blank=True, help_text="Run-once parameters over the agent's own."
    )

    class Meta:
        ordering = ["-queued_at", "-id"]
        constraints = [
            # At most one cycle per agent runs at any moment, whatever the workers believe.
            models.UniqueConstraint(
                fields=["agent"],
                condition=Q(status="running"),
                name="cyclerun_one_running_per_agent",
            ),
            # A redelivered or duplicated scheduled task for the same slot cannot make a second run;
            # a retry of the slot is its next attempt.
            models.UniqueConstraint(
                fields=["agent", "slot", "attempt"], name="cyclerun_unique_agent_slot_attempt"
            ),
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="cyclerun_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(trigger__in=RunTrigger.values), name="cyclerun_trigger_valid"
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(finished_at__gte=models.F("started_at")),
                name="cyclerun_finished_after_started",
            ),
        ]
        indexes = [
            models.Index(fields=["agent", "queued_at"], name="cyclerun_agent_queued"),
            models.Index(fields=["agent", "started_at"], name="cyclerun_agent_started"),
            models.Index(fields=["started_at"], name="cyclerun_started"),
            # Reports over all agents filter on queued_at; run lists page by (-queued_at, -id).
            models.Index(fields=["queued_at", "id"], name="cyclerun_queued_id"),
            models.Index(fields=["status", "agent"], name="cyclerun_status_agent"),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="running"),
                name="cyclerun_running_lease",
            ),
        ]

    def __str__(self):
        """'Run 12 of default (succeeded)': the admin's title and breadcrumb of a run. The agent's
        slug is named only when the agent is already loaded (the runs admin selects it), so a
        list of other records showing their run never pays a query per row for it."""
        of_agent = f" of {self.agent.slug}" if CycleRun.agent.is_cached(self) else ""
        return f"Run {self.pk}{of_agent} ({self.get_status_display().lower()})"
