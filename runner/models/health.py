"""What the cluster and the alerts record: worker heartbeats and alert conditions."""

from django.db import models
from django.db.models import Q

from runner.choices import AlertKind


class WorkerHeartbeat(models.Model):
    """The last time a qcluster worker ran the watchdog task: proof that schedules fire and
    workers execute, whatever the broker (the ORM broker keeps no cluster stats across processes).
    """

    worker = models.CharField(max_length=255, unique=True, help_text="host:pid")
    cluster = models.CharField(max_length=100, blank=True, default="")
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-seen_at"]
        indexes = [models.Index(fields=["seen_at"], name="workerheartbeat_seen")]

    def __str__(self):
        return f"{self.worker} {self.seen_at:%Y-%m-%d %H:%M:%S}"


class Alert(models.Model):
    """One alert condition, from the moment it opened to the moment it cleared.

    While an alert with the same fingerprint is open, the condition is not notified again (only
    `occurrences` and `last_seen_at` move); a partial unique index makes that hold across workers.
    """

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    agent = models.ForeignKey(
        "Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    agent_slug = models.CharField(max_length=64, blank=True, default="")
    run = models.ForeignKey(
        "CycleRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fingerprint = models.CharField(max_length=200)
    subject = models.CharField(max_length=255)
    message = models.TextField()
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    delivery = models.JSONField(
        default=dict, blank=True, help_text='Per channel: {"email": "sent", "webhook": "..."}'
    )

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=Q(closed_at__isnull=True),
                name="alert_one_open_per_fingerprint",
            ),
            models.CheckConstraint(condition=Q(kind__in=AlertKind.values), name="alert_kind_valid"),
        ]
        indexes = [models.Index(fields=["kind", "closed_at"], name="alert_kind_open")]

    def __str__(self):
        return f"{self.kind} {self.agent_slug} {'open' if self.closed_at is None else 'closed'}"


# The guardrails' tables live in their own module; importing them here registers them.
