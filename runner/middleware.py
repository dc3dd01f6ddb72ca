"""Gives every request an id that ties log lines and audit events to what the client saw."""

import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
# What we accept from a client: short and plain, so it fits AuditEvent.request_id and logs cleanly.
ACCEPTED_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def request_id_from(request):
    """The client's X-Request-ID if it is sensible, else a fresh one."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    if ACCEPTED_REQUEST_ID.match(offered):
        return offered
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets `request.request_id` (the client's X-Request-ID or a new one) and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_from(request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request.request_id
        return response
