"""The one ladder of every HTTP control request: read the input, build the actor, make one
service call, map its errors. The runner API and the seed-compatible endpoints both climb it and
differ only in how they word an error (`on_error`).

Control requests are audited even when they never reach a service: the ladder records a body
of the wrong shape as a `refused` event through `services.control_refused` (the views' refusal
mixin, `runner.api.refusals`, does the same for what refuses a request before the ladder: the
permission, the throttle, the body's type or size); range checks (interval, reason length) are
left to the services, which audit their own refusals.

A body may be JSON, or a form or multipart body (`curl -d reason=...`), whose values are text:
`interval_minutes=30` from a form is read as the number it spells, while JSON must say 30.
"""

from collections.abc import Mapping

from django.core.exceptions import SuspiciousOperation
from django.http import QueryDict
from rest_framework.exceptions import APIException, NotFound, ParseError

from runner import services
from runner.actors import Actor
from runner.errors import AgentNotFound, InvalidInput, RunnerError
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


class Body(dict):
    """A control request's fields; `from_form` when they came as form or multipart text."""

    from_form = False


def read_body(request, allowed) -> Body:
    """The request's fields (none when there is no body), refusing anything else.

    Raises ControlInputError for a body its parser refused (naming the field, or "body"), a
    JSON body that is not an object, a form field given twice, or a field not in `allowed`.
    """
    try:
        data = request.data
    except ParseError as exc:
        raise ControlInputError(getattr(exc, "field", "body"), str(exc.detail)) from exc
    body = Body()
    if isinstance(data, QueryDict):  # a form or multipart body (or DRF's stand-in for none)
        repeated = sorted(name for name, values in data.lists() if len(values) > 1)
        if repeated:
            raise ControlInputError(repeated[0], f"{repeated[0]} is given more than once.")
        body.from_form = True
        data = data.dict()
    if not isinstance(data, Mapping):
        raise ControlInputError("body", f"Expected a JSON object, got {type(data).__name__}.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        allowed_text = ", ".join(sorted(allowed)) or "none"
        raise ControlInputError(
            unknown[0], f"Unknown field {unknown[0]!r}; allowed fields: {allowed_text}."
        )
    body.update(data)
    return body


def read_reason(body) -> str:
    """The optional free-text reason; its type is checked here, its length by the service."""
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ControlInputError("reason", "reason must be a string.")
    if "\x00" in reason:
        raise ControlInputError("reason", "reason must not contain NUL characters.")
    return reason


def read_interval(body):
    """`interval_minutes` as sent: a JSON number, or a form's text (the service reads its digits
    and checks the range)."""
    value = body.get("interval_minutes")
    if body.from_form and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlInputError("interval_minutes", INTERVAL_MESSAGE)
    return value


def body_text(request, name) -> str:
    """Best-effort text field `name` of a request being refused, whatever its body holds."""
    try:
        data = request.data
    except (APIException, SuspiciousOperation):  # unparsable, of the wrong type or too large
        return ""
    value = data.get(name, "") if isinstance(data, Mapping) else ""
    return value if isinstance(value, str) else ""


def read_until(body):
    """`until` of a pause: absent, null, or text (an ISO 8601 datetime or a duration such as 2h;
    the service parses it and checks its range)."""
    value = body.get("until")
    if value is not None and not isinstance(value, str):
        raise ControlInputError(
            "until", "until must be an ISO 8601 datetime or a duration such as 90m, 8h or 2d."
        )
    return value


def reason_for_audit(request) -> str:
    return body_text(request, "reason")


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


def control_request(request, *, agent, action, fields, call, on_error, not_found=NotFound):
    """Read the body (only `fields`), then `call(body=, reason=, actor=)` -> Response.

    `agent` is the slug the request names (the service finds and locks the agent in one query),
    or an Agent. Shape errors are audited here and handed to `on_error` as InvalidInput; the
    services' own refusals (already audited) are handed to it as they come. An unknown agent
    raises `not_found()`, which the views' refusal mixin audits.
    """
    try:
        body = read_body(request, fields)
        reason = read_reason(body)
        return call(body=body, reason=reason, actor=actor_for(request))
    except ControlInputError as exc:
        target = find_agent(agent) if isinstance(agent, str) else agent
        if target is None:
            raise not_found() from None
        refuse(
            request,
            agent=target,
            action=action,
            message=exc.message,
            reason=reason_for_audit(request),
        )
        return on_error(InvalidInput(exc.message, field=exc.field))
    except AgentNotFound:
        raise not_found() from None
    except RunnerError as exc:
        return on_error(exc)
