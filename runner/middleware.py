"""Request id for every request: the caller's `X-Request-ID` if it looks sane, else a new one.

It is set on `request.request_id` (audit events record it), bound to the log context so every log
line of the request carries it, and returned in the `X-Request-ID` response header. One access log
line per request is written by the `runner.request` logger.
"""

import logging
import re
import time
import uuid

from runner import logs

HEADER = "X-Request-ID"
_META_KEY = "HTTP_X_REQUEST_ID"
# Accept what proxies and clients commonly send (uuids, hex, base64-ish ids), nothing that could
# smuggle text into logs or headers.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

access_logger = logging.getLogger("runner.request")


def request_id_for(request) -> str:
    incoming = request.META.get(_META_KEY, "")
    if incoming and _VALID.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_for(request)
        request.request_id = request_id
        started = time.perf_counter()
        with logs.bind(request_id=request_id):
            response = self.get_response(request)
            access_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
        response[HEADER] = request_id
        return response
