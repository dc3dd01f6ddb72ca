"""Refusals at the HTTP edge: each answered as JSON, and each control or configuration request
refused here audited once.

The services audit the refusals they make (a refused transition, a value out of range), and the
control ladder audits a body of the wrong shape; an error the views raise for one of those is
marked as audited (`mark_audited`). Whatever else refuses a request on its way in is audited by
`AuditedRefusalMixin.handle_exception`: a missing permission, an unknown agent, a body of the
wrong type, too large or unparsable, the throttle, the serializer. Anonymous requests (401),
methods a view does not serve (405) and reads are not audited.
"""

from rest_framework import exceptions

from runner.api.control import reason_for_audit, refuse
from runner.api.errors import as_api_exception


def mark_audited(exc):
    """`exc` answers a refusal that is already in the audit trail."""
    exc.audited = True
    return exc


def refusal_text(detail) -> str:
    """DRF error detail (a string, or lists and dicts of them) as one line for the trail."""
    if isinstance(detail, dict):
        return "; ".join(f"{name}: {refusal_text(value)}" for name, value in detail.items())
    if isinstance(detail, list):
        return " ".join(refusal_text(value) for value in detail)
    return str(detail)


class AuditedRefusalMixin:
    """Audit a control or configuration request refused at the HTTP edge, once."""

    def audit_action(self):
        """The AuditAction of this request, or None when it is not audited (a read)."""
        raise NotImplementedError

    def audit_agent(self):
        """(agent or None, slug asked for) of the request, without raising."""
        raise NotImplementedError

    def handle_exception(self, exc):
        exc = as_api_exception(exc)
        if isinstance(exc, exceptions.APIException) and not getattr(exc, "audited", False):
            self.audit_refusal(exc)
        return super().handle_exception(exc)

    def audit_refusal(self, exc):
        request = self.request
        action = self.audit_action()
        if action is None or not (request.user and request.user.is_authenticated):
            return
        if isinstance(exc, exceptions.PermissionDenied):
            message = f"Permission denied: {self.required_permission(request)} is required."
        else:
            message = refusal_text(exc.detail)
        agent, slug = self.audit_agent()
        refuse(
            request,
            agent=agent,
            agent_slug=None if agent is not None else slug,
            action=action,
            message=message,
            reason=reason_for_audit(request),
        )
        mark_audited(exc)
