"""Input and output shapes of the runner API. Serializers validate and present; they never write."""

from collections.abc import Mapping

from django.db import models
from rest_framework import serializers

from runner.models import INTERVAL_MAX, INTERVAL_MIN, Agent, AuditEvent, CycleRun
from runner.validation import REASON_MAX_LENGTH

STATE_FIELDS = Agent.STATE_FIELDS


class StrictInputMixin:
    """Refuse fields the serializer does not accept, instead of silently dropping them."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for name in sorted(set(data)):
                field = self.fields.get(name)
                if field is None:
                    writable = sorted(n for n, f in self.fields.items() if not f.read_only)
                    errors[name] = [f"Unknown field. Allowed fields: {', '.join(writable)}."]
                elif field.read_only:
                    errors[name] = ["This field is read-only."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def json_type_name(value):
    """The JSON name of a parsed JSON value's type ("string", "number", ...)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names = {str: "string", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class JSONTypedMixin:
    """A field that takes only its own JSON type, where DRF would turn 0 into "0" or "30" into 30.

    The configuration endpoints take JSON only, so a value of another type is a client's mistake.
    """

    expected = "a string"

    def accepts(self, data):
        return isinstance(data, str)

    def to_internal_value(self, data):
        if not self.accepts(data):
            raise serializers.ValidationError(
                f"Expected {self.expected}, got {json_type_name(data)}."
            )
        return super().to_internal_value(data)


class StrictCharField(JSONTypedMixin, serializers.CharField):
    pass


class StrictSlugField(JSONTypedMixin, serializers.SlugField):
    pass


class StrictChoiceField(JSONTypedMixin, serializers.ChoiceField):
    pass


class StrictIntegerField(JSONTypedMixin, serializers.IntegerField):
    """A JSON number with no fraction (30 or 30.0), never a string or a boolean; every refusal
    names the allowed range."""

    expected = "an integer"

    def __init__(self, **kwargs):
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None and high is not None:
            self.expected = f"an integer from {low} to {high}"
            message = f"Must be a whole number from {low} to {high}."
            kwargs["error_messages"] = {
                "invalid": message,
                "min_value": message,
                "max_value": message,
                **kwargs.get("error_messages", {}),
            }
        super().__init__(**kwargs)

    def accepts(self, data):
        return isinstance(data, int | float) and not isinstance(data, bool)


def _contains_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


class AgentSerializer(StrictInputMixin, serializers.ModelSerializer):
    """An agent: its configuration (editable) and its runner state and counters (read-only)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.SlugField: StrictSlugField,
        models.PositiveIntegerField: StrictIntegerField,
    }
    serializer_choice_field = StrictChoiceField

    class Meta:
        model = Agent
        fields = ["slug", *Agent.CONFIG_FIELDS, *STATE_FIELDS]
        read_only_fields = ["slug", *STATE_FIELDS]

    def validate_parameters(self, value):
        """The agent kind checks the meaning (in the service); here only what JSON storage refuses."""
        if _contains_nul(value):
            raise serializers.ValidationError("Parameters must not contain NUL characters.")
        return value

    def validate_active_windows(self, value):
        """runner.schedules checks the windows (in the service); here what JSON storage refuses."""
        if _contains_nul(value):
            raise serializers.ValidationError("active_windows must not contain NUL characters.")
        return value


class AgentCreateSerializer(AgentSerializer):
    """Like AgentSerializer, with the slug settable (once, at creation)."""

    class Meta(AgentSerializer.Meta):
        read_only_fields = list(STATE_FIELDS)
        extra_kwargs = {"name": {"required": False, "allow_blank": True}}


class BudgetUsageSerializer(serializers.Serializer):
    budget = serializers.CharField(help_text="cycles_per_day, llm_tokens_per_day, ...")
    unit = serializers.CharField(help_text="cycles, tokens or USD")
    limit = serializers.FloatField()
    used = serializers.FloatField(required=False, help_text="Used since the budget day began.")
    left = serializers.FloatField(required=False)
    exhausted = serializers.BooleanField(
        required=False, help_text="Spent (or the next LLM call would cross it): no cycle runs."
    )
    resets_at = serializers.DateTimeField(required=False, help_text="When the budget day ends.")
    error = serializers.CharField(required=False, help_text="Why the usage could not be read.")


class AgentStatusSerializer(serializers.Serializer):
    agent = serializers.CharField(help_text="The agent's slug.")
    state = serializers.CharField()
    running = serializers.BooleanField()
    interval_minutes = serializers.IntegerField()
    next_run = serializers.DateTimeField(allow_null=True)
    last_run = serializers.DateTimeField(allow_null=True)
    last_success = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    run_count = serializers.IntegerField()
    success_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    consecutive_failures = serializers.IntegerField()
    paused_until = serializers.DateTimeField(
        allow_null=True, help_text="When a pause with an end resumes by itself."
    )
    current_run = serializers.IntegerField(
        allow_null=True, help_text="Id of the cycle running now, if any."
    )
    budgets = BudgetUsageSerializer(
        many=True, help_text="Each daily budget of the agent against what it used today."
    )


class ReasonSerializer(serializers.Serializer):
    """Optional body of a control request (documentation of the shape checked in the view)."""

    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=REASON_MAX_LENGTH,
        help_text="Why you are doing this, kept in the audit trail.",
    )


class PauseSerializer(ReasonSerializer):
    """Optional body of a pause: a reason, and when the pause ends by itself."""

    until = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="When the runner resumes by itself: an ISO 8601 datetime (UTC if it names no "
        "offset) or a duration from now such as 90m, 8h or 2d; after now, at most 366 days ahead.",
    )


class IntervalSerializer(ReasonSerializer):
    interval_minutes = serializers.IntegerField(min_value=INTERVAL_MIN, max_value=INTERVAL_MAX)


class CycleRunSerializer(serializers.ModelSerializer):
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    control_event = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    config_version = serializers.IntegerField(
        source="config_version.number",
        read_only=True,
        allow_null=True,
        help_text="The number of the configuration version this cycle ran with.",
    )

    class Meta:
        model = CycleRun
        fields = [
            "id",
            "agent",
            "trigger",
            "status",
            "requested_by",
            "control_event",
            "slot",
            "missed_slots",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "worker",
            "task_id",
            "trading_mode",
            "config_version",
            "summary",
            "error_type",
            "error_message",
            "attempt",
            "retry_of",
            "not_before",
            "policy_note",
            "parameter_overrides",
        ]
        read_only_fields = fields


class CycleRunDetailSerializer(CycleRunSerializer):
    """A run with what is too large for lists: configuration snapshot, traceback and log lines."""

    class Meta(CycleRunSerializer.Meta):
        fields = [*CycleRunSerializer.Meta.fields, "config_snapshot", "traceback", "log_lines"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent_slug", read_only=True)
    actor = serializers.CharField(source="actor_username", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "agent",
            "action",
            "outcome",
            "refusal_reason",
            "actor",
            "source",
            "state_before",
            "state_after",
            "changes",
            "reason",
            "client_ip",
            "request_id",
            "created_at",
        ]
        read_only_fields = fields


# --- documentation of error bodies -------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class RefusedSerializer(ErrorSerializer):
    state = serializers.CharField(help_text="The agent's state when the request was refused.")


class SeedErrorSerializer(ErrorSerializer):
    field = serializers.CharField(required=False, help_text="The offending input field, if any.")


# --- seed-compatible shapes --------------------------------------------------------------------


class SeedStatusSerializer(serializers.Serializer):
    state = serializers.CharField()
    running = serializers.BooleanField()
    last_run = serializers.DateTimeField(allow_null=True)
    next_run = serializers.DateTimeField(allow_null=True)
    interval_minutes = serializers.IntegerField()
    run_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    last_error = serializers.CharField(allow_null=True)
    total_forecasts = serializers.IntegerField()
    total_trades = serializers.IntegerField()


class SeedActionSerializer(serializers.Serializer):
    status = serializers.CharField()
    message = serializers.CharField()


class SeedStartSerializer(SeedActionSerializer):
    next_run = serializers.DateTimeField(allow_null=True)


class SeedIntervalSerializer(SeedActionSerializer):
    interval_minutes = serializers.IntegerField()


class SeedRunResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    run_id = serializers.IntegerField(help_text="The cycle run, at /api/runs/{run_id}/.")
    status = serializers.CharField(help_text="The run's status (queued, running, succeeded, ...).")
