"""Throttle for control requests; the rate is read from settings on every request."""

from rest_framework.throttling import ScopedRateThrottle

from runner.conf import conf
from runner.ratelimit import AtomicThrottleMixin

CONTROL_SCOPE = "control"


class ControlRateThrottle(AtomicThrottleMixin, ScopedRateThrottle):
    """Per-user limit on views whose `throttle_scope` is "control" (RUNNER_API_CONTROL_RATE).

    DRF's own rate table is copied once at import; reading the setting here lets a deployment
    (or a test) change the rate without reloading the class. The counts are checked and written
    atomically in the shared cache (runner.ratelimit), so the rate holds across every worker.
    """

    def get_rate(self):
        if self.scope == CONTROL_SCOPE:
            return conf.RUNNER_API_CONTROL_RATE
        return super().get_rate()
