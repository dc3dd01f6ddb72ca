"""Input checks shared by every interface, so the admin, API and CLI refuse with the same words."""

import re
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from runner.budgets import parse_budgets
from runner.choices import INTERVAL_MAX, INTERVAL_MIN, RETRYABLE_STATUSES, TradingMode
from runner.conf import conf
from runner.errors import InvalidInput
from runner.registry import validate_parameters
from runner.schedules import check_schedule

REASON_MAX_LENGTH = 1000
# A pause with an end ends within this long (a longer pause is a stop).
PAUSE_UNTIL_MAX = timedelta(days=366)
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_PATTERN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")


# Digits as typed in a form or on a command line: ASCII only, so "²" or "٣" are not numbers here.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,18}")


def bounded_int_message(field, low, high):
    return f"{field} must be a whole number from {low} to {high}."


INTERVAL_MESSAGE = bounded_int_message("interval_minutes", INTERVAL_MIN, INTERVAL_MAX)


def parse_bounded_int(value, *, field, low, high):
    """An integer in [low, high], from a number or the digits of a form field; bools, fractions,
    other text and null are refused naming the field."""
    message = bounded_int_message(field, low, high)
    if isinstance(value, bool) or value is None:
        raise InvalidInput(message, field=field)
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidInput(message, field=field)
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not _WHOLE_NUMBER.fullmatch(text):
            raise InvalidInput(message, field=field)
        value = int(text)
    if not isinstance(value, int):
        raise InvalidInput(message, field=field)
    if not low <= value <= high:
        error = InvalidInput(message, field=field)
        error.bound = "min" if value < low else "max"
        raise error
    return value


def parse_interval(value):
    return parse_bounded_int(value, field="interval_minutes", low=INTERVAL_MIN, high=INTERVAL_MAX)


# A code point in U+D800..U+DFFF inside a str is a lone surrogate (a JSON "\ud800" escape, or a
# command-line byte Python could not decode): UTF-8 cannot encode it, so no database can store it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text) -> bool:
    return _LONE_SURROGATE.search(text) is not None


def lone_surrogate_message(field):
    return (
        f"{field} must be valid Unicode text: a lone surrogate (\\ud800..\\udfff without "
        "its pair) cannot be stored."
    )


def without_lone_surrogates(text):
    """`text` with each lone surrogate replaced by U+FFFD (for text kept whatever it holds)."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def parse_reason(value):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("reason must be a string.", field="reason")
    if has_lone_surrogate(value):
        raise InvalidInput(lone_surrogate_message("reason"), field="reason")
    if len(value) > REASON_MAX_LENGTH:
        raise InvalidInput(
            f"reason must be at most {REASON_MAX_LENGTH} characters.", field="reason"
        )
    return value


def validate_agent_config(agent):
    """Model-level checks beyond field validators: kind, parameters, budgets and the trading-mode
    ceiling."""
    errors = {}
    try:
        agent.parameters = validate_parameters(agent.kind, agent.parameters)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        agent.budgets = parse_budgets(agent.budgets)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if agent.trading_mode == TradingMode.LIVE and conf.TRADING_MODE != TradingMode.LIVE:
        errors["trading_mode"] = [
            "An agent can be set to live only while the environment says TRADING_MODE=live."
        ]
    errors.update(check_schedule(agent, now=timezone.now()))
    errors.update(check_retry_on(agent))
    if errors:
        raise ValidationError(errors)


def check_retry_on(agent) -> dict:
    """`retry_on` is comma-separated outcomes; normalised on the agent ("failed,timed_out")."""
    value = agent.retry_on
    items = [item.strip() for item in value.split(",")] if isinstance(value, str) else None
    items = [item for item in items if item] if items is not None else None
    if items is None or any(item not in RETRYABLE_STATUSES for item in items):
        allowed = ", ".join(RETRYABLE_STATUSES)
        return {
            "retry_on": [
                f"retry_on must list outcomes among {allowed}, comma-separated; got {value!r}."
            ]
        }
    agent.retry_on = ",".join(status for status in RETRYABLE_STATUSES if status in items)
    return {}


def parse_parameter_overrides(agent, overrides) -> dict:
    """Run-once parameters over the agent's own, checked by the agent kind's own schema together
    with the stored ones; returns the overrides as the kind normalised them. None: no overrides."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise InvalidInput(
            "parameters must be a JSON object of parameter overrides.", field="parameters"
        )
    try:
        merged = validate_parameters(agent.kind, {**agent.parameters, **overrides})
    except ValidationError as exc:
        messages = exc.message_dict.get("parameters") or exc.messages
        raise InvalidInput("; ".join(messages), field="parameters") from exc
    return {name: merged.get(name, value) for name, value in overrides.items()}


def parse_duration(value, *, field, maximum) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` -> timedelta up to `maximum`; anything else is refused naming the
    field."""
    match = DURATION_PATTERN.match(str(value))
    if not match:
        raise InvalidInput(
            f"{field} must be a duration such as 30m, 12h, 7d or 2w; got {value!r}.", field=field
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise InvalidInput(f"{field} must be a positive duration; got {value!r}.", field=field)
    try:
        delta = timedelta(**{DURATION_UNITS[unit]: amount})
    except OverflowError:
        delta = maximum * 2
    if delta > maximum:
        raise InvalidInput(
            f"{field} must be at most {maximum.days} days; got {value!r}.", field=field
        )
    return delta


def parse_iso_moment(text) -> datetime | None:
    """An ISO 8601 datetime or date (UTC when it names no offset), or None."""
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def parse_until(value, *, now, field="until") -> datetime | None:
    """When a pause ends: None (no end), an ISO 8601 datetime (UTC if naive), or a duration from
    now such as `90m`, `8h`, `2d`; it must lie after now and within PAUSE_UNTIL_MAX."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    elif isinstance(value, str) and "\x00" not in value and DURATION_PATTERN.match(value):
        moment = now + parse_duration(value, field=field, maximum=PAUSE_UNTIL_MAX)
    elif isinstance(value, str) and "\x00" not in value:
        moment = parse_iso_moment(value.strip())
    else:
        moment = None
    limit = f"a time after now and at most {PAUSE_UNTIL_MAX.days} days ahead"
    if moment is None:
        raise InvalidInput(
            f"{field} must be an ISO 8601 datetime or a duration such as 90m, 8h or 2d "
            f"({limit}); got {value!r}.",
            field=field,
        )
    if not now < moment <= now + PAUSE_UNTIL_MAX:
        raise InvalidInput(f"{field} must be {limit}; got {moment.isoformat()}.", field=field)
    return moment
