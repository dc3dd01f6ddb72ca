"""Schemathesis hooks for the API fuzz test (loaded through SCHEMATHESIS_HOOKS).

Some generated "negative" cases are valid requests once sent, so they are left out: a case with
no body (or a JSON `null` body, which goes out as no body at all), no query, and path parameters
that match their schema (the test fixes them to existing records in one of its runs). The
control endpoints' body is optional (the seed's `curl -X POST`), and the only other parts such a
case can "negate" are the credentials, which the test sends explicitly and which replace the
generated values.
"""

import jsonschema
import schemathesis
from schemathesis.types import NotSet


def _path_parameters_valid(case):
    for parameter in case.operation.path_parameters:
        value = (case.path_parameters or {}).get(parameter.name)
        schema = parameter.definition.get("schema", {})
        if schema.get("type") == "integer" and isinstance(value, str) and value.isdigit():
            value = int(value)
        if not jsonschema.Draft4Validator(schema).is_valid(value):
            return False
    return True


def _not_negative_once_sent(case):
    if not case.data_generation_method or not case.data_generation_method.is_negative:
        return False
    no_body = case.body is None or isinstance(case.body, NotSet)
    return no_body and not case.query and _path_parameters_valid(case)


@schemathesis.hook
def before_generate_case(context, strategy):
    return strategy.filter(lambda case: not _not_negative_once_sent(case))
