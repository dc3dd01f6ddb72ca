"""Input checks shared by every interface, so the admin, API and CLI refuse with the same words."""

import re

from django.core.exceptions import ValidationError

from runner.choices import INTERVAL_MAX, INTERVAL_MIN, TradingMode
from runner.conf import conf
from runner.errors import InvalidInput
from runner.registry import validate_parameters

REASON_MAX_LENGTH = 1000


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
    """Model-level checks beyond field validators: kind, parameters and the trading-mode ceiling."""
    errors = {}
    try:
        agent.parameters = validate_parameters(agent.kind, agent.parameters)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if agent.trading_mode == TradingMode.LIVE and conf.TRADING_MODE != TradingMode.LIVE:
        errors["trading_mode"] = [
            "An agent can be set to live only while the environment says TRADING_MODE=live."
        ]
    if errors:
        raise ValidationError(errors)
