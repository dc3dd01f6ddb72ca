"""The one ladder of every HTTP control request: read the input, build the actor, make one
service call, map its errors. The runner API and the seed-compatible endpoints both climb it and
differ only in how they word an error (`on_error`).

Control requests are audited even when they never reach a service (no permission, a body of the
wrong shape): the ladder records a `refused` event through `services.control_refused`; range
checks (interval, reason length) are left to the services, which audit their own refusals.
"""

from collections.abc import Mapping

from django.http import QueryDict
from rest_framework.exceptions import ParseError

from runner import services
from runner.actors import Actor
from runner.errors import InvalidInput, RunnerError
from runner.models import Agent, AuditSource
from runner.validation import INTERVAL_MESSAGE


def actor_for(request) -> Actor:
    return Actor.from_request(request, source=AuditSource.API)


class ControlInputError(Exception):
    """A control request body of the wrong shape; `field` names the culprit ("body" for all)."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field
        self.message = message


def read_body(request, allowed) -> dict:
    """The request's JSON object (empty when there is no body), refusing anything else.

    Raises ControlInputError for malformed JSON, a non-object body or a field not in `allowed`.
    """
    try:
        data = request.data
    except ParseError as exc:
        raise ControlInputError("body", f"Malformed JSON: {exc.detail}") from exc
    if isinstance(data, QueryDict):  # DRF's stand-in when there is no body at all
        data = data.dict()
    if not isinstance(data, Mapping):
        raise ControlInputError("body", f"Expected a JSON object, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        allowed_text = ", ".join(sorted(allowed)) or "none"
        raise ControlInputError(
            unknown[0], f"Unknown field {unknown[0]!r}; allowed fields: {allowed_text}."
        )
    return dict(data)


def read_reason(body) -> str:
    """The optional free-text reason; its type is checked here, its length by the service."""
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ControlInputError("reason", "reason must be a string.")
    if "\x00" in reason:
        raise ControlInputError("reason", "reason must not contain NUL characters.")
    return reason


def read_interval(body):
    """`interval_minutes` as JSON sent it: a number (its range is the service's to check)."""
    value = body.get("interval_minutes")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlInputError("interval_minutes", INTERVAL_MESSAGE)
    return value


def reason_for_audit(request) -> str:
    """Best-effort reason of a request being refused before its body was read."""
    try:
        data = request.data
    except ParseError:
        return ""
    reason = data.get("reason", "") if isinstance(data, Mapping) else ""
    return reason if isinstance(reason, str) else ""


def refuse(request, *, agent, action, message, agent_slug=None, reason=""):
    """Audit a control request refused at the HTTP edge."""
    services.control_refused(
        agent=agent,
        agent_slug=agent_slug,
        action=action,
        actor=actor_for(request),
        message=message,
        reason=reason,
    )


def find_agent(slug):
    return Agent.objects.filter(slug=slug).first() if isinstance(slug, str) else None


def control_request(request, *, agent, action, fields, call, on_error):
    """Read the body (only `fields`), then `call(body=, reason=, actor=)` -> Response.

    Shape errors are audited here and handed to `on_error` as InvalidInput; the services' own
    refusals (already audited) are handed to it as they come.
    """
    try:
        body = read_body(request, fields)
        reason = read_reason(body)
        return call(body=body, reason=reason, actor=actor_for(request))
    except ControlInputError as exc:
        refuse(
            request,
            agent=agent,
            action=action,
            message=exc.message,
            reason=reason_for_audit(request),
        )
        return on_error(InvalidInput(exc.message, field=exc.field))
    except RunnerError as exc:
        return on_error(exc)
