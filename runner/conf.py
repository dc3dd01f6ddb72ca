"""Every runner setting, declared once with its default, and the one way code reads them.

As django-q2's `conf.py` does for its own options: a setting is named, typed and defaulted here,
`config/settings.py` fills in what the environment says (`settings_from_environment`), and code
reads `conf.NAME`, never `getattr(settings, NAME, default)`. Reads go to Django's settings on every
access, so a deployment's own settings module and the tests' `settings` fixture both win.

The agents app declares its own settings the same way in `agents/conf.py`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    # How the environment variable of the same name is read: "str", "int", "float", "list",
    # "json", or None when the setting is not read from the environment.
    env: str | None
    help: str
    choices: tuple = ()


class SettingsGroup:
    """A set of declared settings; attribute access reads the current Django setting."""

    def __init__(self, *declared: Setting):
        self.declared = {setting.name: setting for setting in declared}

    def __getattr__(self, name):
        try:
            setting = self.declared[name]
        except KeyError:
            raise AttributeError(f"{name} is not a declared setting") from None
        return getattr(django_settings, name, setting.default)  # another settings module

    def from_environment(self, env) -> dict:
        """{name: value} of every declared setting, read from the environment where it may be
        (for config/settings.py)."""
        values = {}
        for setting in self.declared.values():
            if setting.env is None:
                values[setting.name] = copy.deepcopy(setting.default)
                continue
            value = getattr(env, setting.env)(setting.name, default=setting.default)
            if setting.choices and value not in setting.choices:
                allowed = " or ".join(repr(choice) for choice in setting.choices)
                raise ImproperlyConfigured(f"{setting.name} must be {allowed}, not {value!r}.")
            values[setting.name] = value
        return values


conf = SettingsGroup(
    Setting(
        "RUNNER_AGENT_KINDS",
        {"forecaster": "agents.pipeline.ForecasterAgent"},
        None,
        "Agent kinds the runner can load: kind -> dotted path of a class (runner.protocol).",
    ),
    Setting(
        "RUNNER_EXTRA_AGENT_KINDS",
        {},
        "json",
        'More kinds, as JSON {"kind": "package.module.Class"}; merged over RUNNER_AGENT_KINDS.',
    ),
    Setting(
        "RUNNER_DEFAULT_AGENT",
        "default",
        "str",
        "Slug of the agent that `runagent` and the seed-compatible endpoints use.",
    ),
    Setting(
        "TRADING_MODE",
        "dry_run",
        "str",
        "The ceiling on trading: agents can be `live` only while this says `live`.",
        choices=("dry_run", "live"),
    ),
    Setting(
        "RUNNER_LEASE_SECONDS",
        30,
        "int",
        "A running cycle's lease, renewed by its heartbeat every third of it.",
    ),
    Setting(
        "RUNNER_QUEUED_RUN_TTL_SECONDS",
        600,
        "int",
        "A queued run that no worker starts within this time is marked skipped.",
    ),
    Setting("RUNNER_RUN_LOG_LINES", 500, "int", "Log lines kept on each run."),
    Setting(
        "RUNNER_DISPATCH_POLL_SECONDS",
        0.5,
        "float",
        "Longest sleep of `rundispatcher` between looks at the schedule.",
    ),
    Setting(
        "RUNNER_MAX_TIMEOUT_SECONDS",
        3600,
        None,
        "The longest cycle deadline; django-q2's cluster-wide timeout sits above it.",
    ),
    Setting(
        "RUNNER_WORKER_GATE",
        True,
        "bool",
        "`qcluster` takes a task only when one of its workers is free (runner.cluster).",
    ),
    Setting(
        "RUNNER_RETRY_MAX_DELAY_SECONDS",
        3600,
        "int",
        "The longest backoff before a retry, whatever its attempt number.",
    ),
    Setting(
        "RUNNER_BACKFILL_MAX_SLOTS",
        1000,
        "int",
        "The most slots one backfill request may queue.",
    ),
    Setting(
        "RUNNER_HARD_TIMEOUT_MARGIN_SECONDS",
        60,
        "int",
        "django-q2 kills a cycle this long after its own deadline.",
    ),
    Setting(
        "RUNNER_STATUS_EXTRAS",
        ["agents.status.forecast_totals"],
        None,
        "Dotted paths of f(agent) -> dict merged into the seed-compatible status.",
    ),
    Setting(
        "RUNNER_REPORT_EXTRAS",
        ["agents.reports.forecaster_output", "agents.scoring.forecast_scores"],
        None,
        "Dotted paths of f(agent_or_None, since, until) -> dict merged into report outputs.",
    ),
    Setting(
        "RUNNER_PRUNE_RUNS_OLDER_THAN",
        "",
        "str",
        'A daily schedule deletes finished runs older than this (e.g. "90d"); empty: off.',
    ),
    Setting(
        "RUNNER_API_CONTROL_RATE",
        "120/min",
        "str",
        "Control requests allowed per user (DRF rate syntax).",
    ),
    Setting(
        "RUNNER_API_RUN_ONCE_WAIT_SECONDS",
        60.0,
        "float",
        "The seed-compatible run-once waits this long at most for its cycle.",
    ),
    Setting(
        "RUNNER_API_RUN_ONCE_GRACE_SECONDS",
        2.0,
        "float",
        "After this, a run-once no worker claimed runs in the web process.",
    ),
    Setting(
        "RUNNER_HEARTBEAT_MAX_AGE_SECONDS",
        180,
        "int",
        "/healthz fails when no cluster heartbeat was seen for this long.",
    ),
    Setting(
        "RUNNER_OVERDUE_GRACE_SECONDS",
        300,
        "int",
        "A running agent whose next run is this far past is overdue (health, alerts).",
    ),
    Setting(
        "RUNNER_METRICS_ALLOWED_IPS",
        ["127.0.0.1/32", "::1/128"],
        "list",
        "Networks whose clients may read /metrics without a token.",
    ),
    Setting("RUNNER_METRICS_TOKEN", "", "str", "Bearer token that opens /metrics to anyone."),
    Setting(
        "RUNNER_BUDGET_USAGE",
        ["agents.budgets.budget_usage"],
        None,
        "Dotted paths of f(agent, since, now, wanted) -> dict: what an agent used against its "
        "budgets since the budget day began (runner.budget_usage).",
    ),
    Setting(
        "RUNNER_BUDGET_TIMEZONE",
        "UTC",
        "str",
        "IANA time zone whose midnight ends a budget day (an agent's budgets may name another).",
    ),
    Setting(
        "RUNNER_LLM_PRICES",
        {},
        "json",
        'USD per 1,000 tokens, per model: {"model": {"prompt": 0.15, "completion": 0.6}}; '
        "prices the llm_cost_per_day budget.",
    ),
    Setting("RUNNER_ALERT_EMAILS", [], "list", "Addresses that receive alerts by mail."),
    Setting("RUNNER_ALERT_WEBHOOK_URL", "", "str", "Alerts are POSTed here as JSON."),
    Setting(
        "RUNNER_ALERT_WEBHOOK_TIMEOUT", 5.0, "float", "Seconds before a webhook post gives up."
    ),
    # --- live operations (runner.shutdown, runner.notify, runner.admin.live, the log tail) ---
    Setting(
        "RUNNER_ALERT_URLS",
        "",
        "str",
        "Apprise URLs, separated by spaces or commas (slack://, workflows://, discord://, "
        "tgram://, pagerduty://, json://, ...): every alert goes there when it opens and closes.",
    ),
    Setting(
        "RUNNER_LOG_FLUSH_SECONDS",
        1.0,
        "float",
        "A running cycle's new log lines are written to its run this often (one update a batch).",
    ),
    Setting(
        "RUNNER_LIVE_POLL_SECONDS",
        1.0,
        "float",
        "An open admin page asks this often whether anything it shows has changed.",
    ),
    Setting(
        "RUNNER_LIVE_VERSION_CACHE_SECONDS",
        0.5,
        "float",
        "A web process answers live polls from a version stamp at most this old.",
    ),
    Setting(
        "RUNNER_LIVE_TICKET_SECONDS",
        300,
        "int",
        "A page's signed live ticket lets it poll without a session lookup for this long.",
    ),
    Setting(
        "RUNNER_SHUTDOWN_GRACE_SECONDS",
        30.0,
        "float",
        "On SIGTERM a qcluster asks its cycles to stop, and kills (recording as cancelled) "
        "those still running after this long.",
    ),
)
