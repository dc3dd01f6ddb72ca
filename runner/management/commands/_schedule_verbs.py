"""`runagent` verbs for calendar schedules and run policies (not a command of its own).

runagent schedule [--count N]                preview the next fire times (a read)
runagent backfill --from T --to T            queue a past range's slots as backfill runs
runagent configure --set NAME=VALUE ...      edit configuration fields (schedule, policies...)
"""

import json

from django.core.management.base import CommandError
from django.utils import timezone

from runner import schedules, services
from runner.actors import Actor
from runner.errors import InvalidInput
from runner.models import Agent, AuditAction
from runner.validation import parse_bounded_int

PREVIEW_DEFAULT, PREVIEW_MAX = 5, 100
# Configuration fields that hold text as typed; the others take a JSON value (30, [..], "x").
TEXT_FIELDS = {"name", "kind", "cron", "timezone", "schedule_kind", "overlap_policy"}
TEXT_FIELDS |= {"catchup_policy", "retry_on", "trading_mode"}


def add_arguments(parser):
    parser.add_argument(
        "--count", default=None, help=f"With schedule: how many fire times (1..{PREVIEW_MAX})."
    )
    parser.add_argument("--from", dest="range_from", default=None, help="With backfill: start.")
    parser.add_argument("--to", dest="range_to", default=None, help="With backfill: end.")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="With configure: a field and its value (repeat); JSON for numbers and lists, "
        "e.g. --set schedule_kind=cron --set 'cron=30 14 * * mon-fri' --set retry_attempts=3.",
    )
    parser.add_argument(
        "--parameters",
        default=None,
        help="With --once: JSON object of parameter overrides for this run, e.g. '{\"min_edge\": 0.1}'.",
    )


def check_options(verb, options):
    """Refuse an option given with a verb it does not go with."""
    owners = {"count": "schedule", "range_from": "backfill", "range_to": "backfill"}
    owners |= {"settings": "configure", "parameters": None}
    for option, owner in owners.items():
        if options[option] is not None and verb != owner:
            name = {"range_from": "from", "range_to": "to", "settings": "set"}.get(option, option)
            raise CommandError(f"--{name} goes with {owner or '--once'} only.")


def preview(agent, options) -> dict:
    raw = options["count"] if options["count"] is not None else PREVIEW_DEFAULT
    count = parse_bounded_int(raw, field="count", low=1, high=PREVIEW_MAX)
    return {
        "agent": agent.slug,
        "schedule_kind": agent.schedule_kind,
        "timezone": agent.timezone,
        "fire_times": schedules.preview(agent, count=count, now=timezone.now()),
    }


def preview_text(data) -> str:
    lines = [f"{data['agent']}: next fire times ({data['schedule_kind']}, {data['timezone']})"]
    for row in data["fire_times"]:
        lines.append(f"  {row['fires_at'].isoformat()}  local {row['fires_at_local']}")
    return "\n".join(lines)


def _refused(agent, action, error, options):
    """An input the services never saw is still one `refused` audit event."""
    services.control_refused(
        agent=agent,
        action=action,
        actor=Actor.cli(),
        message=error.message,
        reason=options["reason"],
    )
    return error


def backfill(agent, options):
    if options["range_from"] is None or options["range_to"] is None:
        error = InvalidInput("backfill needs --from and --to.", field="from")
        raise _refused(agent, AuditAction.BACKFILL, error, options)
    return services.agent_backfill(
        agent=agent,
        start=options["range_from"],
        end=options["range_to"],
        actor=Actor.cli(),
        reason=options["reason"],
    )


def backfill_text(runs) -> str:
    slots = ", ".join(run.slot.isoformat() for run in runs[:5])
    more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
    return f"queued {len(runs)} backfill run(s), oldest first: {slots}{more}"


def configure(agent, options):
    values = {}
    for item in options["settings"] or []:
        name, sep, text = item.partition("=")
        try:
            if not sep or name not in Agent.CONFIG_FIELDS:
                raise InvalidInput(
                    f"--set takes NAME=VALUE with NAME one of {', '.join(Agent.CONFIG_FIELDS)}; "
                    f"got {item!r}.",
                    field=name or "set",
                )
            values[name] = text if name in TEXT_FIELDS else _json_value(name, text)
        except InvalidInput as error:
            raise _refused(agent, AuditAction.CONFIGURE, error, options) from None
    if not values:
        error = InvalidInput("configure needs at least one --set NAME=VALUE.", field="set")
        raise _refused(agent, AuditAction.CONFIGURE, error, options)
    return services.agent_update_config(
        agent=agent, values=values, actor=Actor.cli(), reason=options["reason"]
    )


def _json_value(name, text):
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a JSON value; got {text!r}.", field=name) from None


def parameters(agent, options):
    """--parameters of --once, parsed; bad JSON is refused (and audited) as run-once input."""
    if options["parameters"] is None:
        return None
    try:
        return json.loads(options["parameters"])
    except ValueError:
        error = InvalidInput(
            "parameters must be a JSON object of parameter overrides.", field="parameters"
        )
        raise _refused(agent, AuditAction.RUN_ONCE, error, options) from None
