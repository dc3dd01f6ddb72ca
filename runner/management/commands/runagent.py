"""`manage.py runagent`: control an agent from the command line, or run one cycle here.

    runagent --once                      one cycle in this process, recorded like any other
    runagent start|stop|pause|resume     the transitions
    runagent interval N                  set the interval (minutes)
    runagent status                      state and counters (a read; writes nothing)
    runagent logs RUN_ID [--follow]      a run's log lines; --follow prints new ones until it ends
    runagent schedule|backfill|configure calendar schedules and run policies (_schedule_verbs)

Each verb is one service call with the operating-system user as the actor (source `cli`), so it
is audited like the admin and the API. Exit 0 when applied (or the cycle succeeded), 1 when
refused or failed, with the reason on stderr.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from runner import execution, selectors, services, tail
from runner.actors import Actor
from runner.api.filters import ID_MAX
from runner.budgets import budget_text
from runner.conf import conf
from runner.errors import AgentNotFound, RunnerError
from runner.management.commands import _schedule_verbs as schedule_verbs
from runner.models import AuditAction, RunStatus, RunTrigger
from runner.serialization import agent_as_dict, run_as_dict

CONTROL_VERBS = {
    "start": AuditAction.START,
    "stop": AuditAction.STOP,
    "pause": AuditAction.PAUSE,
    "resume": AuditAction.RESUME,
    "interval": AuditAction.SET_INTERVAL,
    "backfill": AuditAction.BACKFILL,
    "configure": AuditAction.CONFIGURE,
}
VERBS = (*CONTROL_VERBS, "status", "schedule", "logs")
TAKES_VALUE = {"interval": "the new interval", "logs": "the run id"}


class Command(BaseCommand):
    help = (
        "Control an agent (start, stop, pause, resume, interval N, status), show a run's log "
        "(logs RUN_ID [--follow]) or run one cycle in this process (--once). Exit 0 when "
        "applied, 1 when refused or failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("verb", nargs="?", choices=VERBS, help="What to do.")
        parser.add_argument(
            "minutes", nargs="?", help="The new interval, for `interval`; the run id, for `logs`."
        )
        parser.add_argument(
            "--follow",
            action="store_true",
            help="With `logs`: print new lines as the run logs them, until it ends "
            "(exit 0 if it succeeded, 1 otherwise).",
        )
        parser.add_argument(
            "--once", action="store_true", help="Run exactly one cycle in this process."
        )
        parser.add_argument(
            "--agent", default=None, help="Agent slug (default: the RUNNER_DEFAULT_AGENT setting)."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--reason", default="", help="Free-text reason kept in the audit trail."
        )
        parser.add_argument(
            "--until",
            default=None,
            help="With pause: when the runner resumes by itself (ISO 8601 datetime, UTC if it "
            "names no offset, or a duration such as 90m, 8h, 2d).",
        )
        schedule_verbs.add_arguments(parser)

    def handle(self, *args, verb, minutes, once, **options):
        if once == bool(verb):
            raise CommandError(
                "Give one verb (start, stop, pause, resume, interval N, status, schedule, logs, "
                "backfill, configure) or --once."
            )
        if minutes is not None and verb not in TAKES_VALUE:
            raise CommandError(f"`{verb or '--once'}` takes no value (got {minutes!r}).")
        if options["follow"] and verb != "logs":
            raise CommandError("--follow goes with `logs RUN_ID` only.")
        if options["until"] is not None and verb != "pause":
            raise CommandError("--until goes with pause only.")
        schedule_verbs.check_options(verb, options)
        if verb == "logs":
            return self._logs(minutes, options)
        slug = options["agent"] or conf.RUNNER_DEFAULT_AGENT
        if once:
            return self._run_once(slug, options)
        try:
            agent = selectors.agent_get(slug)
            if verb == "status":
                return self._print(selectors.agent_status(agent), options, self._status_text)
            if verb == "schedule":
                data = schedule_verbs.preview(agent, options)
                return self._print(data, options, schedule_verbs.preview_text)
            if verb == "backfill":
                runs = schedule_verbs.backfill(agent, options)
                return self._print(
                    [run_as_dict(run) for run in runs],
                    options,
                    lambda _: schedule_verbs.backfill_text(runs),
                )
            agent = self._control(agent, verb, minutes, options)
        except AgentNotFound as exc:
            if verb in CONTROL_VERBS:
                services.control_refused(
                    agent=None,
                    agent_slug=slug,
                    action=CONTROL_VERBS[verb],
                    actor=Actor.cli(),
                    message=exc.message,
                    reason=options["reason"],
                )
            self._refuse(exc, options)
        except RunnerError as exc:
            self._refuse(exc, options)
        self._print(agent_as_dict(agent), options, self._applied_text(verb))

    def _control(self, agent, verb, minutes, options):
        actor, reason = Actor.cli(), options["reason"]
        if verb == "interval":
            return services.agent_set_interval(
                agent=agent, interval_minutes=minutes, actor=actor, reason=reason
            )
        if verb == "configure":
            return schedule_verbs.configure(agent, options)
        if verb == "pause":
            return services.agent_pause(
                agent=agent, actor=actor, reason=reason, until=options["until"]
            )
        return services.TRANSITIONS[verb](agent=agent, actor=actor, reason=reason)

    def _run_once(self, slug, options):
        try:
            agent = selectors.agent_get(slug)
            queued = services.agent_run_once(
                agent=agent,
                actor=Actor.cli(),
                reason=options["reason"],
                trigger=RunTrigger.CLI,
                enqueue=False,
                parameters=schedule_verbs.parameters(agent, options),
            )
            run = execution.run_queued(queued.pk)
        except RunnerError as exc:
            self._refuse(exc, options)
        self._print(run_as_dict(run), options, self._run_text)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(
                f"run {run.pk} {run.status}: {run.error_type}: {run.error_message}".rstrip(": "),
                returncode=1,
            )

    def _logs(self, value, options):
        """Print the run's lines (and, following, the new ones as they come) from the live tail."""
        valid = value is not None and value.isascii() and value.isdigit()
        if not valid or not 1 <= int(value) <= ID_MAX:
            raise CommandError(f"RUN_ID must be a whole number from 1 to {ID_MAX} (got {value!r}).")
        run_id = int(value)
        if options["follow"]:
            pages = tail.follow(run_id, poll_seconds=conf.RUNNER_LIVE_POLL_SECONDS)
        else:
            pages = (page for page in [tail.log_after(run_id)] if page is not None)
        last = None
        try:
            for last in pages:
                for number, text in last.lines:
                    row = {"run": run_id, "number": number, "text": text}
                    self.stdout.write(json.dumps(row) if options["json"] else text)
                self.stdout.flush()
        except KeyboardInterrupt:
            raise CommandError("stopped following.", returncode=130) from None
        if last is None:
            raise CommandError(f"No run with id {run_id}.", returncode=1)
        if options["follow"]:
            self.stderr.write(f"run {run_id} of {last.agent} ended: {last.status}")
            if last.status != RunStatus.SUCCEEDED:
                raise CommandError(f"run {run_id} {last.status}", returncode=1)

    def _refuse(self, exc, options):
        if options["json"]:
            body = {"detail": exc.message, "state": exc.state, "field": exc.field}
            self.stdout.write(json.dumps(body))
        raise CommandError(f"refused: {exc.message}", returncode=1) from exc

    def _print(self, data, options, as_text):
        if options["json"]:
            self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder))
        else:
            self.stdout.write(as_text(data))

    @staticmethod
    def _applied_text(verb):
        def text(agent):
            if verb == "interval":
                return f"{agent['slug']}: interval set to {agent['interval_minutes']} minutes"
            if verb == "configure":
                return f"{agent['slug']}: configuration saved"
            until = f" until {agent['paused_until'].isoformat()}" if agent["paused_until"] else ""
            return f"{agent['slug']}: {verb} applied; now {agent['state']}{until}"

        return text

    @staticmethod
    def _status_text(status):
        def when(moment):
            return moment.isoformat() if moment else "-"

        lines = [
            f"{status['agent']}: {status['state']}, every {status['interval_minutes']} min",
            f"  next run: {when(status['next_run'])}   last run: {when(status['last_run'])}",
            f"  cycles: {status['run_count']} run, {status['success_count']} succeeded, "
            f"{status['error_count']} failed, {status['consecutive_failures']} failed in a row",
        ]
        if status["paused_until"]:
            lines.append(f"  paused until {when(status['paused_until'])} (resumes by itself)")
        if status["current_run"]:
            lines.append(f"  running now: run {status['current_run']}")
        if status["last_error"]:
            lines.append(f"  last error: {status['last_error']}")
        lines += [f"  budget {budget_text(line)}" for line in status.get("budgets", [])]
        return "\n".join(lines)

    @staticmethod
    def _run_text(run):
        lines = [
            f"Run {run['id']} of agent {run['agent']}: {run['status']} "
            f"in {run['duration_ms']} ms (trigger {run['trigger']}, mode {run['trading_mode']})",
        ]
        for key, value in (run["summary"] or {}).items():
            lines.append(f"  {key}: {json.dumps(value, cls=DjangoJSONEncoder)}")
        if run["error"]:
            lines.append(f"  error: {run['error']['type']}: {run['error']['message']}")
        return "\n".join(lines)
