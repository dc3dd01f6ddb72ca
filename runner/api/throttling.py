"""Throttle for control requests; the rate is read from settings on every request."""

from django.core.cache import caches
from rest_framework.throttling import ScopedRateThrottle

from runner.conf import conf
from runner.ratelimit import count_request

CONTROL_SCOPE = "control"


class ControlRateThrottle(ScopedRateThrottle):
    """Per-user limit on views whose `throttle_scope` is "control" (RUNNER_API_CONTROL_RATE).

    DRF's own rate table is copied once at import; reading the setting here lets a deployment
    (or a test) change the rate without reloading the class. Each request is counted and checked
    in one atomic step in the shared cache (runner.ratelimit), so the rate holds across every
    worker, and `Retry-After` says when the user's window ends.
    """

    seconds_left = None

    def get_rate(self):
        if self.scope == CONTROL_SCOPE:
            return conf.RUNNER_API_CONTROL_RATE
        return super().get_rate()

    def allow_request(self, request, view):
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        count, self.seconds_left = count_request(
            caches["default"], self.get_cache_key(request, view), self.duration
        )
        return count <= self.num_requests

    def wait(self):
        return self.seconds_left
