"""`manage.py rebuildrollups [--days-per-batch 7]`: recompute the run rollups from the runs."""

import json

from django.core.management.base import BaseCommand, CommandError

from runner.reports.rebuild import DAYS_PER_BATCH, rebuild_rollups


class Command(BaseCommand):
    help = (
        "Recompute the per-agent, per-day run rollups that reports read, from the runs, a few "
        "days per transaction. Safe to run at any time and again: the result is the same."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days-per-batch",
            type=int,
            default=DAYS_PER_BATCH,
            help=f"UTC days rebuilt per transaction (default {DAYS_PER_BATCH}).",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        days = options["days_per_batch"]
        if days < 1:
            raise CommandError("--days-per-batch must be at least 1.")
        quiet = options["json"] or options["verbosity"] < 1

        def progress(first, end, rollup_rows, bucket_rows):
            if not quiet:
                self.stdout.write(
                    f"{first} to {end}: {rollup_rows} rollup rows, {bucket_rows} bucket rows"
                )

        result = rebuild_rollups(days_per_batch=days, progress=progress)
        summary = {
            "batches": result.batches,
            "days": result.days,
            "rollup_rows": result.rollup_rows,
            "bucket_rows": result.bucket_rows,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"Rebuilt {result.days} days in {result.batches} batches: "
                f"{result.rollup_rows} rollup rows, {result.bucket_rows} bucket rows."
            )
