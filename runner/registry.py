"""Finds agent classes by kind through the RUNNER_AGENT_KINDS setting (runner never imports agents)."""

from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from runner.conf import conf
from runner.errors import AgentLoadError


def agent_kinds():
    """The built-in kinds, with those registered through RUNNER_EXTRA_AGENT_KINDS over them."""
    return {**conf.RUNNER_AGENT_KINDS, **conf.RUNNER_EXTRA_AGENT_KINDS}


def get_agent_class(kind):
    path = agent_kinds().get(kind)
    if path is None:
        known = ", ".join(sorted(agent_kinds())) or "none"
        raise AgentLoadError(f"Unknown agent kind {kind!r} (known kinds: {known}).")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise AgentLoadError(
            f"Agent kind {kind!r} cannot be imported from {path!r}: {exc}"
        ) from exc
    if not callable(getattr(cls, "run", None)):
        raise AgentLoadError(f"Agent kind {kind!r} ({path}) has no run(context) method.")
    return cls


def validate_parameters(kind, parameters):
    """Returns the kind's validated parameters; raises ValidationError naming the bad parameter."""
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters must be a JSON object."})
    try:
        cls = get_agent_class(kind)
    except AgentLoadError as exc:
        raise ValidationError({"kind": str(exc)}) from exc
    validator = getattr(cls, "validate_parameters", None)
    if validator is None:
        return dict(parameters)
    try:
        return validator(parameters)
    except ValidationError as exc:
        messages = (
            exc.messages
            if not hasattr(exc, "message_dict")
            else [f"{key}: {'; '.join(msgs)}" for key, msgs in exc.message_dict.items()]
        )
        raise ValidationError({"parameters": messages}) from exc
