"""The guardrails' tables: numbered configuration versions and budget breaches.

Only `runner.services` writes them.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from runner.choices import AuditAction, AuditSource


class AgentConfigVersion(models.Model):
    """A numbered version of an agent's configuration, one per applied configuration change.

    Written by `runner.services.versions` in the transaction of the change's audit event, which
    it links to (who, when, why and the before/after live there too). Restoring a version is a
    configuration change like any other, so it makes the next version.
    """

    agent = models.ForeignKey("Agent", on_delete=models.CASCADE, related_name="config_versions")
    number = models.PositiveIntegerField()
    config = models.JSONField(encoder=DjangoJSONEncoder, help_text="Every configuration field.")
    audit_event = models.ForeignKey(
        "AuditEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    actor_username = models.CharField(max_length=150, blank=True, default="")
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    reason = models.TextField(blank=True, default="")
    restored_from = models.PositiveIntegerField(
        null=True, blank=True, help_text="The version this one restored, if it was a restore."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["agent", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="configversion_agent_number"),
        ]

    def __str__(self):
        return f"{self.agent_id} v{self.number}"


class BudgetBreach(models.Model):
    """A budget found spent before a cycle: the cycle did not run, and a running agent was paused
    until the budget's day ends. One row per budget per crossing (metrics count them)."""

    agent = models.ForeignKey("Agent", on_delete=models.CASCADE, related_name="budget_breaches")
    budget = models.CharField(max_length=32)
    unit = models.CharField(max_length=16)
    limit = models.FloatField()
    used = models.FloatField()
    day_ends_at = models.DateTimeField()
    paused = models.BooleanField(help_text="Whether this breach paused the agent.")
    run = models.ForeignKey(
        "CycleRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    audit_event = models.ForeignKey(
        "AuditEvent", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["agent", "created_at"], name="budgetbreach_agent_created")]

    def __str__(self):
        return f"{self.budget} of agent {self.agent_id} at {self.created_at:%Y-%m-%d %H:%M}"
