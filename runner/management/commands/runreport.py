"""`manage.py runreport`: the run report for one agent or all agents, as a table, CSV or JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from runner import reports, selectors
from runner.errors import RunnerError
from runner.reports.formats import report_csv, report_table


class Command(BaseCommand):
    help = (
        "Report on historical runs over [since, until): counts, success rate, timing percentiles, "
        "failures, reliability, control actions. Exit 1 on a bad window or an unknown agent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--agent", default=None, help="Agent slug (default: all agents).")
        parser.add_argument(
            "--since",
            default=reports.DEFAULT_SINCE,
            help="Start: a duration before now (30m, 12h, 7d, 2w) or an ISO date/datetime. Default 7d.",
        )
        parser.add_argument(
            "--until", default="now", help="End (exclusive), same forms as --since. Default now."
        )
        parser.add_argument(
            "--bucket", default=reports.DEFAULT_BUCKET, help="hour, day (default) or week."
        )
        parser.add_argument("--format", default="table", choices=["table", "csv", "json"])

    def handle(self, *args, **options):
        try:
            agent = selectors.agent_get(options["agent"]) if options["agent"] else None
            report = reports.run_report_from_params(
                agent=agent,
                since=options["since"],
                until=options["until"],
                bucket=options["bucket"],
            )
        except RunnerError as exc:
            raise CommandError(exc.message, returncode=1) from exc
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2))
        elif options["format"] == "csv":
            self.stdout.write(report_csv(report), ending="")
        else:
            self.stdout.write(report_table(report), ending="")
