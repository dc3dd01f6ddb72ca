"""The append-only audit trail: one event per control or configuration request."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from runner.choices import AuditAction, AuditOutcome, AuditSource


class AuditEvent(models.Model):
    """One control request, applied or refused. Append-only: PostgreSQL refuses UPDATE and DELETE.

    References to the agent and the user carry no database constraint, so deleting either never
    has to touch (and so never can rewrite) the trail; the slug and username are kept as copies.
    """

    agent = models.ForeignKey(
        "Agent",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    agent_slug = models.CharField(max_length=64, blank=True, default="")
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices)
    refusal_reason = models.TextField(blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    state_before = models.CharField(max_length=16, blank=True, default="")
    state_after = models.CharField(max_length=16, blank=True, default="")
    changes = models.JSONField(
        default=dict, blank=True, help_text='{"field": {"before": ..., "after": ...}}'
    )
    reason = models.TextField(blank=True, default="", help_text="The operator's own words.")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=AuditOutcome.values), name="auditevent_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=AuditSource.values), name="auditevent_source_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["agent", "created_at"], name="auditevent_agent_created"),
            models.Index(fields=["created_at"], name="auditevent_created"),
        ]

    def __str__(self):
        return f"{self.agent_slug} {self.action} {self.outcome}"
