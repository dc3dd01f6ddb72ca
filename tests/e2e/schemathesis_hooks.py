"""Schemathesis hooks for the API fuzz test (loaded through SCHEMATHESIS_HOOKS).

Some generated "negative" cases are valid requests once sent, so they are left out:
- no body, or a JSON `null` body, which the HTTP client sends as no body at all: the control
  endpoints' body is optional (the seed's `curl -X POST`);
- path and query values whose negation is only their JSON type (the integer 0 for a string
  parameter), which a URL cannot carry: `?agent=0` is the string "0" once sent; likewise
  `None` and `[]` values, which are not sent at all, and `[x]`, which is sent as x, as is
  `{x: ...}` (the HTTP client sends a mapping's keys);
- headers and cookies: the only ones this API declares are its credentials, which the test
  sends explicitly and which replace the generated values;
- form and multipart bodies (the control endpoints take them): a form carries only text, so
  what makes such a case negative (a JSON type, a body that is not an object) is lost once sent.
A case is kept when anything it sends, read as the server reads it, breaks the schema.
"""

import jsonschema
import schemathesis
from schemathesis.types import NotSet


def _as_sent(value):
    """The string a scalar becomes in a URL (None and containers are kept as they are)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    return value


def _valid_as_sent(schema, value):
    value = _as_sent(value)
    if schema.get("type") in ("integer", "number") and isinstance(value, str):
        try:
            value = int(value) if schema["type"] == "integer" else float(value)
        except ValueError:
            return False
    return jsonschema.Draft4Validator(schema).is_valid(value)


def _sent(values):
    """Parameters as the HTTP client sends them: None and [] are left out, [x] and {x: y} are x."""
    sent = {}
    for name, value in (values or {}).items():
        if isinstance(value, dict):
            value = list(value)
        if isinstance(value, list) and len(value) <= 1:
            value = value[0] if value else None
        if value is not None:
            sent[name] = value
    return sent


def _parameters_valid_as_sent(declared, values):
    values = _sent(values)
    names = {parameter.name for parameter in declared}
    if set(values) - names:
        return False  # an unknown parameter: the API refuses it
    return all(
        _valid_as_sent(parameter.definition.get("schema", {}), values[parameter.name])
        for parameter in declared
        if parameter.name in values
    )


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _not_negative_once_sent(case):
    if not case.data_generation_method or not case.data_generation_method.is_negative:
        return False
    if case.media_type in FORM_MEDIA_TYPES:
        return True
    operation = case.operation
    no_body = case.body is None or isinstance(case.body, NotSet)
    return (
        no_body
        and _parameters_valid_as_sent(operation.path_parameters, case.path_parameters)
        and _parameters_valid_as_sent(operation.query, case.query)
    )


@schemathesis.hook
def before_generate_case(context, strategy):
    return strategy.filter(lambda case: not _not_negative_once_sent(case))
