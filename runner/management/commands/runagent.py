"""`manage.py runagent --once`: one cycle in this process, recorded like any other."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from runner import execution, selectors, services
from runner.actors import Actor
from runner.errors import RunnerError
from runner.models import RunStatus, RunTrigger
from runner.serialization import run_as_dict


class Command(BaseCommand):
    help = "Run one cycle of an agent in this process (exit 0 on success, 1 on failure/refusal)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once",
            action="store_true",
            required=True,
            help="Run exactly one cycle (the only mode).",
        )
        parser.add_argument(
            "--agent", default=None, help="Agent slug (default: the RUNNER_DEFAULT_AGENT setting)."
        )
        parser.add_argument("--json", action="store_true", help="Print the run as one JSON object.")
        parser.add_argument(
            "--reason", default="", help="Free-text reason kept in the audit trail."
        )

    def handle(self, *args, **options):
        slug = options["agent"] or settings.RUNNER_DEFAULT_AGENT
        try:
            agent = selectors.agent_get(slug)
            queued = services.agent_run_once(
                agent=agent,
                actor=Actor.cli(),
                reason=options["reason"],
                trigger=RunTrigger.CLI,
                enqueue=False,
            )
            claim = services.cycle_claim_queued(run_id=queued.pk, worker=execution.worker_name())
        except RunnerError as exc:
            raise CommandError(f"refused: {exc.message}", returncode=1) from exc
        run = execution.execute_claim(claim)
        if options["json"]:
            self.stdout.write(json.dumps(run_as_dict(run), cls=DjangoJSONEncoder))
        else:
            self.stdout.write(self._readable(run))
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(
                f"run {run.pk} {run.status}: {run.error_type}: {run.error_message}".rstrip(": "),
                returncode=1,
            )

    def _readable(self, run):
        lines = [
            f"Run {run.pk} of agent {run.agent.slug}: {run.status} "
            f"in {run.duration_ms} ms (trigger {run.trigger}, mode {run.trading_mode})",
        ]
        for key, value in (run.summary or {}).items():
            lines.append(f"  {key}: {json.dumps(value, cls=DjangoJSONEncoder)}")
        if run.error_message:
            lines.append(f"  error: {run.error_type}: {run.error_message}")
        return "\n".join(lines)
