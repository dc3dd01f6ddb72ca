"""Telling people about alerts: one notification per state change (opened, closed) on every channel.

Channels, each configured in the environment (runner.conf):
- mail to RUNNER_ALERT_EMAILS (Django's mail, EMAIL_URL);
- a JSON POST of `payload()` to RUNNER_ALERT_WEBHOOK_URL;
- every Apprise URL in RUNNER_ALERT_URLS: Slack (slack://), Microsoft Teams through Power Automate
  workflows (workflows://), Discord (discord://), Telegram (tgram://), PagerDuty (pagerduty://),
  plain JSON webhooks (json://, jsons://) and the rest of Apprise's services.

The alert's state lives in the database (runner.alerts opens and closes `Alert` rows, each change
exactly once across processes); this module only sends, after the change committed, and records
what each channel answered on the alert. A channel that fails is recorded, never raised: an alert
must not break the cycle or request that changed it.

A closed alert is sent with the same title as its opening (its first line), so PagerDuty URLs
with `action=map` resolve the incident the opening triggered (Apprise derives the incident key
from that line).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import apprise
import httpx
from apprise.utils.parse import parse_urls
from django.core.mail import send_mail
from django.utils import timezone

from runner.conf import conf
from runner.models import Alert, AlertKind

logger = logging.getLogger(__name__)

OPENED, CLOSED = "opened", "closed"
WARNING_KINDS = {AlertKind.AGENT_OVERDUE}


@dataclass(frozen=True)
class Notice:
    """What every channel says about one state change of one alert."""

    change: str  # OPENED or CLOSED
    title: str
    body: str
    mail_subject: str
    apprise_type: str


def notice(alert, change) -> Notice:
    title = f"[agent-runner] {alert.subject} (alert {alert.pk})"
    if change == OPENED:
        body = f"{alert.message}\n\nOpened at {alert.opened_at.isoformat()}."
        kind = (
            apprise.NotifyType.WARNING
            if alert.kind in WARNING_KINDS
            else apprise.NotifyType.FAILURE
        )
        return Notice(OPENED, title, body, f"[agent-runner] {alert.subject}", kind)
    lasted = alert.closed_at - alert.opened_at
    body = (
        f"Resolved: {alert.subject}. The condition cleared at {alert.closed_at.isoformat()}, "
        f"{int(lasted.total_seconds())} s after it opened ({alert.occurrences} occurrence(s))."
    )
    return Notice(
        CLOSED, title, body, f"[agent-runner] Resolved: {alert.subject}", apprise.NotifyType.SUCCESS
    )


def payload(alert, change=OPENED) -> dict:
    """The JSON body of the plain webhook (RUNNER_ALERT_WEBHOOK_URL)."""
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "agent": alert.agent_slug,
        "run_id": alert.run_id,
        "subject": alert.subject,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "fingerprint": alert.fingerprint,
        "state": "open" if change == OPENED else "closed",
        "closed_at": alert.closed_at.isoformat() if alert.closed_at else None,
    }


def _failure(exc) -> str:
    return f"failed: {type(exc).__name__}: {exc}"[:500]


def _by_mail(alert, note: Notice) -> dict:
    recipients = list(conf.RUNNER_ALERT_EMAILS)
    if not recipients:
        return {}
    try:
        send_mail(
            subject=note.mail_subject,
            message=note.body,
            from_email=None,
            recipient_list=recipients,
        )
        return {"email": "sent"}
    except Exception as exc:  # SMTP down must not break the caller
        logger.exception("alert %s: mail delivery failed", alert.pk)
        return {"email": _failure(exc)}


def _by_webhook(alert, note: Notice) -> dict:
    url = conf.RUNNER_ALERT_WEBHOOK_URL
    if not url:
        return {}
    try:
        response = httpx.post(
            url, json=payload(alert, note.change), timeout=conf.RUNNER_ALERT_WEBHOOK_TIMEOUT
        )
        response.raise_for_status()
        return {"webhook": f"sent: HTTP {response.status_code}"}
    except Exception as exc:  # an unreachable webhook must not break the caller
        logger.warning("alert %s: webhook delivery failed: %s", alert.pk, exc)
        return {"webhook": _failure(exc)}


def _by_apprise(alert, note: Notice) -> dict:
    """Each Apprise URL on its own, so the alert records which service took it (URLs shown with
    Apprise's privacy masking: no tokens in the database)."""
    urls = parse_urls(conf.RUNNER_ALERT_URLS or "")
    if not urls:
        return {}
    results = {}
    for number, url in enumerate(urls, start=1):
        service = apprise.Apprise()
        if not service.add(url):
            results[f"{number}: {url.split(':', 1)[0]}://"] = "failed: not a valid Apprise URL"
            continue
        (server,) = service
        name = f"{number}: {server.url(privacy=True).split('?', 1)[0]}"
        try:
            sent = server.notify(body=note.body, title=note.title, notify_type=note.apprise_type)
            results[name] = "sent" if sent else "failed: the service refused it (see the log)"
        except Exception as exc:
            logger.warning("alert %s: %s delivery failed: %s", alert.pk, name, exc)
            results[name] = _failure(exc)
    return {"apprise": results}


CHANNELS = (_by_mail, _by_webhook, _by_apprise)


def deliver(alert_id, change=OPENED) -> dict:
    """Send one state change of one alert on every configured channel; record each answer."""
    alert = Alert.objects.get(pk=alert_id)
    note = notice(alert, change)
    delivery = {}
    for channel in CHANNELS:
        delivery.update(channel(alert, note))
    if change == OPENED:
        Alert.objects.filter(pk=alert.pk).update(delivery=delivery, notified_at=timezone.now())
    else:
        Alert.objects.filter(pk=alert.pk).update(delivery={**alert.delivery, CLOSED: delivery})
    return delivery


def alert_opened(alert_id) -> dict:
    return deliver(alert_id, OPENED)


def alert_closed(alert_id) -> dict:
    return deliver(alert_id, CLOSED)
