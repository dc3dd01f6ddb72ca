"""Query filters for the run history and the audit trail (invalid values answer 400)."""

import django_filters

from runner.models import AuditAction, AuditEvent, AuditOutcome, AuditSource, CycleRun, RunStatus, RunTrigger


class RunFilter(django_filters.FilterSet):
    agent = django_filters.CharFilter(field_name="agent__slug", help_text="Agent slug.")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    trigger = django_filters.ChoiceFilter(choices=RunTrigger.choices)
    since = django_filters.IsoDateTimeFilter(
        field_name="queued_at", lookup_expr="gte", help_text="Queued at or after (ISO 8601)."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="queued_at", lookup_expr="lt", help_text="Queued before (ISO 8601)."
    )

    class Meta:
        model = CycleRun
        fields = ["agent", "status", "trigger", "since", "until"]


class AuditEventFilter(django_filters.FilterSet):
    agent = django_filters.CharFilter(field_name="agent_slug", help_text="Agent slug.")
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    outcome = django_filters.ChoiceFilter(choices=AuditOutcome.choices)
    source = django_filters.ChoiceFilter(choices=AuditSource.choices)
    actor = django_filters.CharFilter(field_name="actor_username", help_text="Username.")
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="At or after (ISO 8601)."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Before (ISO 8601)."
    )

    class Meta:
        model = AuditEvent
        fields = ["agent", "action", "outcome", "source", "actor", "since", "until"]
