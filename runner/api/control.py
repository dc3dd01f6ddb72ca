"""What every control endpoint shares: who is asking, reading the body, auditing refusals.

Control requests are audited even when they never reach a transition (no permission, a body of
the wrong shape): the view records a `refused` event through `services.control_refused` and
then answers 400 or 403. Range checks (interval, reason length) are left to the services, which
audit their own refusals.
"""

import ipaddress
from collections.abc import Mapping

from django.http import QueryDict
from rest_framework.exceptions import ParseError

from runner import services
from runner.actors import Actor
from runner.models import Agent, AuditSource


def client_ip(request):
    """The peer address as Django saw it (None when it is not an IP, e.g. a unix socket)."""
    address = request.META.get("REMOTE_ADDR", "").split("%", 1)[0]  # no IPv6 zone in the trail
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def actor_for(request) -> Actor:
    return Actor.for_user(
        request.user,
        source=AuditSource.API,
        client_ip=client_ip(request),
        request_id=getattr(request, "request_id", ""),
    )


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
