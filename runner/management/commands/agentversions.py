"""`manage.py agentversions`: an agent's configuration versions from the command line.

    agentversions [list]                   newest first, each with what it changed
    agentversions show N                   one version's whole configuration
    agentversions diff A [B]               what changed from version A to B (default: newest)
    agentversions restore N --reason ...   make version N the configuration again

`--agent` defaults to RUNNER_DEFAULT_AGENT; `--json` prints JSON. A restore is one call to
`services.agent_restore_version` with the operating-system user as the actor (source `cli`),
audited like the admin's and the API's: exit 0 when applied, 1 when refused (reason on stderr).
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from runner import selectors, services, versions
from runner.actors import Actor
from runner.conf import conf
from runner.errors import AgentNotFound, RunnerError
from runner.models import AuditAction

VERBS = ("list", "show", "diff", "restore")
NEEDS = {"list": (0, 0), "show": (1, 1), "diff": (1, 2), "restore": (1, 1)}


def _number(text):
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) < 2**31:
        raise CommandError(f"A version is a whole number from 1; got {text!r}.", returncode=1)
    return int(text)


def _value(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)


def change_lines(changes) -> list[str]:
    return [f"  {c['field']}: {_value(c['before'])} -> {_value(c['after'])}" for c in changes]


class Command(BaseCommand):
    help = (
        "List, show, diff and restore an agent's configuration versions. A restore is audited "
        "(source cli); exit 1 when it is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("verb", nargs="?", default="list", choices=VERBS)
        parser.add_argument("numbers", nargs="*", help="Version number(s).")
        parser.add_argument("--agent", default=None, help="Agent slug (RUNNER_DEFAULT_AGENT).")
        parser.add_argument("--limit", type=int, default=20, help="list: how many (20).")
        parser.add_argument("--reason", default="", help="restore: kept in the audit trail.")
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, verb, numbers, **options):
        low, high = NEEDS[verb]
        if not low <= len(numbers) <= high:
            raise CommandError(f"`{verb}` takes {low}..{high} version number(s).", returncode=1)
        numbers = [_number(text) for text in numbers]
        slug = options["agent"] or conf.RUNNER_DEFAULT_AGENT
        try:
            agent = selectors.agent_get(slug)
            data, text = getattr(self, f"_{verb}")(agent, numbers, options)
        except AgentNotFound as exc:
            if verb == "restore":
                services.control_refused(
                    agent=None,
                    agent_slug=slug,
                    action=AuditAction.RESTORE,
                    actor=Actor.cli(),
                    message=exc.message,
                    reason=options["reason"],
                )
            raise CommandError(exc.message, returncode=1) from exc
        except RunnerError as exc:
            if options["json"]:
                self.stdout.write(json.dumps({"detail": exc.message, "field": exc.field}))
            raise CommandError(f"refused: {exc.message}", returncode=1) from exc
        self.stdout.write(json.dumps(data, cls=DjangoJSONEncoder) if options["json"] else text)

    def _list(self, agent, numbers, options):
        listed = list(versions.versions_of(agent)[: max(options["limit"], 1)])
        rows = versions.with_changes(listed, agent)
        lines = [f"Configuration versions of {agent.slug} (newest first):"]
        for row in rows:
            restored = f", restored v{row['restored_from']}" if row["restored_from"] else ""
            lines.append(
                f"v{row['number']}  {row['created_at'].isoformat()}  {row['action']}{restored}  "
                f"by {row['actor'] or '-'} ({row['source']})"
                + (f"  reason: {row['reason']}" if row["reason"] else "")
            )
            lines += change_lines(row["changes"])
        return rows, "\n".join(lines if rows else [f"{agent.slug} has no versions yet."])

    def _show(self, agent, numbers, options):
        row = versions.with_changes([versions.version_get(agent, numbers[0])], agent)[0]
        text = f"v{row['number']} of {agent.slug}:\n" + json.dumps(
            row["config"], indent=2, sort_keys=True, cls=DjangoJSONEncoder
        )
        return row, text

    def _diff(self, agent, numbers, options):
        newest = versions.versions_of(agent).values_list("number", flat=True).first()
        diff = versions.version_diff(agent, numbers[0], numbers[1] if numbers[1:] else newest)
        header = f"{agent.slug}: v{diff['from_version']} -> v{diff['to_version']}"
        lines = change_lines(diff["changes"]) or ["  no changes"]
        return diff, "\n".join([header, *lines])

    def _restore(self, agent, numbers, options):
        agent = services.agent_restore_version(
            agent=agent, number=numbers[0], actor=Actor.cli(), reason=options["reason"]
        )
        newest = versions.versions_of(agent)[0].number
        data = {"agent": agent.slug, "restored_from": numbers[0], "version": newest}
        return data, f"{agent.slug}: version {numbers[0]} restored as version {newest}"
