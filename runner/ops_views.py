"""Operational endpoints: /livez, /healthz and /metrics (no login; /metrics is restricted).

/livez answers 200 whenever the process serves requests (a liveness probe, and the baseline of
bench/load.py). /healthz checks the database, the cluster heartbeat and overdue agents and
answers 200 or 503 with general reasons only. /metrics serves Prometheus text to clients allowed
by RUNNER_METRICS_ALLOWED_IPS or presenting RUNNER_METRICS_TOKEN as a bearer token.
"""

import hmac
import ipaddress
import logging

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from runner import metrics, monitoring
from runner.conf import conf

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def livez(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def healthz(request):
    healthy, report = monitoring.health_report()
    return JsonResponse(report, status=200 if healthy else 503)


def _allowed_networks():
    try:
        return [
            ipaddress.ip_network(cidr, strict=False) for cidr in conf.RUNNER_METRICS_ALLOWED_IPS
        ]
    except ValueError as exc:
        raise ImproperlyConfigured(f"RUNNER_METRICS_ALLOWED_IPS: {exc}") from exc


def metrics_allowed(request) -> bool:
    token = conf.RUNNER_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in _allowed_networks())


@never_cache
@require_GET
def metrics_view(request):
    if not metrics_allowed(request):
        logger.warning("metrics refused for %s", request.META.get("REMOTE_ADDR", "?"))
        return JsonResponse(
            {
                "detail": "Metrics are restricted: scrape from an address in "
                "RUNNER_METRICS_ALLOWED_IPS or send Authorization: Bearer <RUNNER_METRICS_TOKEN>."
            },
            status=403,
        )
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
