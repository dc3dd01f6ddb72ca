"""`manage.py pruneruns --older-than 90d [--dry-run]`: delete old finished runs in batches."""

import json

from django.core.management.base import BaseCommand, CommandError

from runner import periodic, retention
from runner.errors import InvalidInput


class Command(BaseCommand):
    help = (
        "Delete finished runs that ended longer ago than --older-than, in small batches. "
        "Queued and running runs and the audit trail are never deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", help="Age such as 90d, 12w, 36h (m, h, d or w).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.DEFAULT_BATCH_SIZE,
            help=f"Runs deleted per transaction (default {retention.DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--sync-schedule",
            action="store_true",
            help="Create or remove the daily django-q2 prune schedule to match the setting "
            "RUNNER_PRUNE_RUNS_OLDER_THAN, then exit.",
        )

    def handle(self, *args, **options):
        if options["sync_schedule"]:
            return self._sync_schedule()
        if not options["older_than"]:
            raise CommandError("--older-than is required (for example --older-than 90d).")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            result = retention.prune_runs(
                older_than=options["older_than"],
                dry_run=options["dry_run"],
                batch_size=options["batch_size"],
            )
        except InvalidInput as exc:
            raise CommandError(exc.message.replace("older_than", "--older-than")) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
            return
        verb = "Would delete" if result.dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {result.runs} runs that ended before {result.cutoff.isoformat()}"
        )
        for status, count in result.runs_by_status.items():
            self.stdout.write(f"  {status}: {count}")
        for label, count in result.related.items():
            self.stdout.write(f"  linked {label}: {count}")
        if not result.dry_run:
            self.stdout.write(f"in {result.batches} batches; audit events are kept.")

    def _sync_schedule(self):
        try:
            periodic.sync_periodic_schedules()
        except InvalidInput as exc:
            raise CommandError(exc.message) from exc
        job = periodic.PRUNE_RUNS
        if job.enabled():
            self.stdout.write(f"Daily schedule {job.name!r} runs {job.func}.")
        else:
            self.stdout.write("Pruning is disabled (RUNNER_PRUNE_RUNS_OLDER_THAN is empty).")
