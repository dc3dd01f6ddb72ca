"""Retention of run records: delete old finished runs in small batches, never audit events.

`manage.py pruneruns --older-than 90d` and the django-q2 schedule (enabled by the setting
RUNNER_PRUNE_RUNS_OLDER_THAN) both call `prune_runs()`. Each batch is its own short transaction
on rows selected by primary key, so no lock is held for long and workers claiming cycles are
never kept waiting. Queued and running runs are never touched. Deleting a run cascades to records
other apps link to it (e.g. the forecaster's records); the audit trail has no link to runs.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from runner.conf import conf
from runner.models import CycleRun, RunStatus
from runner.reports import parse_duration

logger = logging.getLogger(__name__)

PRUNABLE_STATUSES = [s for s in RunStatus.values if s not in (RunStatus.QUEUED, RunStatus.RUNNING)]
DEFAULT_BATCH_SIZE = 1000


@dataclass
class PruneResult:
    cutoff: object
    dry_run: bool
    runs_by_status: dict = field(default_factory=dict)
    related: dict = field(default_factory=dict)
    batches: int = 0

    @property
    def runs(self):
        return sum(self.runs_by_status.values())

    def as_dict(self):
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "runs": self.runs,
            "runs_by_status": self.runs_by_status,
            "related": self.related,
            "batches": self.batches,
        }


def prunable_runs(cutoff):
    """Finished (or skipped) runs that ended before the cutoff."""
    ended_before = Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, queued_at__lt=cutoff)
    return CycleRun.objects.filter(ended_before, status__in=PRUNABLE_STATUSES)


def prune_runs(
    *, older_than, dry_run=False, batch_size=DEFAULT_BATCH_SIZE, now=None
) -> PruneResult:
    """Delete runs that ended more than `older_than` (e.g. "90d") ago; a dry run only counts."""
    age = parse_duration(older_than, field="older_than")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or timezone.now()) - age
    result = PruneResult(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        counts = prunable_runs(cutoff).values("status").annotate(n=Count("id")).order_by("status")
        result.runs_by_status = {row["status"]: row["n"] for row in counts}
        return result
    by_status, related = Counter(), Counter()
    last_id = 0
    while True:
        batch = list(
            prunable_runs(cutoff)
            .filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", "status")[:batch_size]
        )
        if not batch:
            break
        last_id = batch[-1][0]
        with transaction.atomic():
            # Re-filtered on status and age, so a row that changed since it was read is kept.
            doomed = prunable_runs(cutoff).filter(pk__in=[pk for pk, _ in batch])
            statuses = Counter(doomed.values_list("status", flat=True))
            _, deleted = doomed.delete()
        by_status.update(statuses)
        for label, count in deleted.items():
            if label != CycleRun._meta.label:
                related[label] += count
        result.batches += 1
    result.runs_by_status = dict(sorted(by_status.items()))
    result.related = dict(sorted(related.items()))
    logger.info("pruned %s runs ended before %s: %s", result.runs, cutoff, result.as_dict())
    return result


def prune_runs_scheduled():
    """django-q2 entry point: prune by the setting; does nothing when the setting is empty."""
    older_than = conf.RUNNER_PRUNE_RUNS_OLDER_THAN
    if not older_than:
        return {"pruned": False, "reason": "RUNNER_PRUNE_RUNS_OLDER_THAN is empty"}
    return prune_runs(older_than=older_than).as_dict()
