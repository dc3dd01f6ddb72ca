"""The agent's configuration form, with the reason for the change that goes into the audit trail."""

from django import forms

from runner import registry
from runner.budgets import budgets_help
from runner.models import INTERVAL_MAX, INTERVAL_MIN, Agent


class AgentAdminForm(forms.ModelForm):
    audit_reason = forms.CharField(
        label="Reason for this change",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Optional; kept in the audit trail with the before/after of what you changed.",
    )

    class Meta:
        model = Agent
        fields = ["slug", *Agent.CONFIG_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            kinds = sorted(registry.agent_kinds())
            current = self.instance.kind if self.instance and self.instance.kind else None
            if current and current not in kinds:
                kinds.append(current)
            self.fields["kind"].widget = forms.Select(choices=[(k, k) for k in kinds])
        for name in Agent.SCHEDULE_FIELDS:
            # A form that leaves a policy out keeps its current (or default) value.
            if name in self.fields:
                self.fields[name].required = False
        if "budgets" in self.fields:
            self.fields["budgets"].help_text = budgets_help()
        if "interval_minutes" in self.fields:
            self.fields["interval_minutes"].widget.attrs.update(
                {"min": INTERVAL_MIN, "max": INTERVAL_MAX}
            )
