"""One bounded-retry loop for the agent's outside services (Gamma, the LLM endpoint).

Retries only what may pass on its own: timeouts, transport errors, 429 and 5xx answers, with
exponential backoff (backoff, 2*backoff, 4*backoff, ...). Anything else is final at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class RequestFailed(Exception):
    """No 200 answer. `kind`: `timeout`, `connect`, `transport`, `status` or `deadline`."""

    def __init__(self, message: str, *, kind: str, attempts: int, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts
        self.status = status


def request_with_retries(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    max_retries: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    time_left: Callable[[], float] | None = None,
    **kwargs,
) -> tuple[httpx.Response, int]:
    """(the 200 response, attempts used), or RequestFailed after at most 1 + max_retries tries.

    With `time_left` (seconds until the cycle's deadline) no attempt starts after the deadline
    and none may run past it, so a slow service cannot hold a cycle beyond its own timeout.
    """
    attempt = 0
    while True:
        attempt += 1
        status = None
        if time_left is not None:
            remaining = time_left()
            if remaining <= 0:
                raise RequestFailed(
                    "not attempted: the cycle's deadline has passed",
                    kind="deadline",
                    attempts=attempt - 1,
                )
            timeout = client.timeout.read or remaining
            kwargs["timeout"] = min(timeout, remaining)
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            kind, problem = "timeout", f"timed out ({type(exc).__name__})"
        except httpx.ConnectError as exc:
            kind, problem = "connect", f"could not connect: {exc}"
        except httpx.TransportError as exc:
            kind, problem = "transport", f"failed: {type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return response, attempt
            status = response.status_code
            kind, problem = "status", f"answered HTTP {status}: {response.text[:200]!r}"
            if status not in RETRYABLE_STATUSES:
                raise RequestFailed(problem, kind=kind, attempts=attempt, status=status)
        if attempt > max_retries:
            raise RequestFailed(
                f"{problem} (after {attempt} attempts)", kind=kind, attempts=attempt, status=status
            )
        sleep(backoff_seconds * 2 ** (attempt - 1))
