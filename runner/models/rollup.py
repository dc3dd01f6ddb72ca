"""Run rollups: what the report needs from each agent's runs of one UTC day, kept by the database.

Database triggers on the runs table (migration 0010) keep both tables in step with every insert,
update and delete of a run, whatever code writes it; `manage.py rebuildrollups` recomputes them
from the runs. Reports over long windows then read a few rows per agent and day instead of every
run. Only the triggers and the rebuild write here.
"""

from django.db import models


class RunRollup(models.Model):
    """The runs of one agent queued on one UTC day with one status and one trigger."""

    agent = models.ForeignKey("Agent", on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="UTC day of the runs' queued_at.")
    status = models.CharField(max_length=16)
    trigger = models.CharField(max_length=16)
    runs = models.BigIntegerField(default=0)
    duration_count = models.BigIntegerField(default=0, help_text="Runs with a duration.")
    duration_sum = models.BigIntegerField(default=0, help_text="Sum of their durations (ms).")
    duration_max = models.BigIntegerField(null=True, blank=True)
    delay_count = models.BigIntegerField(
        default=0, help_text="Runs with a slot that started (they have a start delay)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "day", "status", "trigger"], name="runrollup_key"
            )
        ]
        indexes = [models.Index(fields=["day"], name="runrollup_day")]

    def __str__(self):
        return f"{self.agent_id} {self.day} {self.status}/{self.trigger}: {self.runs}"


class RunRollupBucket(models.Model):
    """How many of one agent's runs of one UTC day fall in one histogram bucket of one measure.

    Buckets are fixed (runner/reports/histogram.py): bucket 0 holds values under 1 ms, bucket
    b >= 1 holds [2^((b-1)/8), 2^(b/8)) ms. Status and trigger are left out of the key, since the
    report's percentiles are over all runs: fewer rows, and a run settling moves no bucket.
    """

    DURATION, DELAY = 1, 2
    MEASURES = {DURATION: "duration", DELAY: "delay"}

    agent = models.ForeignKey("Agent", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    measure = models.PositiveSmallIntegerField(choices=list(MEASURES.items()))
    bucket = models.SmallIntegerField()
    runs = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "day", "measure", "bucket"], name="runrollupbucket_key"
            )
        ]
        # Covers the report's read (a day range, summed by measure and bucket): an index-only scan.
        indexes = [
            models.Index(
                fields=["day", "measure", "bucket", "agent", "runs"], name="runrollupbucket_day"
            )
        ]

    def __str__(self):
        return (
            f"{self.agent_id} {self.day} {self.MEASURES[self.measure]}[{self.bucket}]: {self.runs}"
        )
