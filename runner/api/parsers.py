"""Request body parsers of the runner API: DRF's, bounded so that no body can cause a 500.

- JSON is refused (400, naming the top-level field, or `body`) when it is malformed, nested
  deeper than MAX_JSON_DEPTH, or holds a lone surrogate (`"\\ud800"`), which no database text
  column can store.
- Form and multipart bodies (control requests only) are strings by nature; the views read them.
- Any body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused with 413 before it is read (Django checks
  JSON and form bodies itself, DRF's multipart parser only its non-file parts).
"""

import json
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from runner.validation import has_lone_surrogate, lone_surrogate_message

MAX_JSON_DEPTH = 64


class BodyError(ParseError):
    """A body refused by its parser; `field` names the top-level field at fault, or "body"."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def _check_json(data, text):
    """Refuse nesting deeper than MAX_JSON_DEPTH and lone surrogates, naming the top-level field.

    Iterative, so that a value just under the interpreter's recursion limit cannot overflow here.
    """
    surrogates_possible = re.search(r"\\u[dD][89a-fA-F]", text) is not None
    stack = [(data, 0, "body")]
    while stack:
        value, depth, field = stack.pop()
        if isinstance(value, str):
            if surrogates_possible and has_lone_surrogate(value):
                raise BodyError(field, lone_surrogate_message(field))
        elif isinstance(value, dict | list):
            if depth == MAX_JSON_DEPTH:
                raise BodyError(field, f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
            top = depth == 0 and isinstance(value, dict)
            for key, item in value.items() if isinstance(value, dict) else enumerate(value):
                if isinstance(key, str) and surrogates_possible and has_lone_surrogate(key):
                    raise BodyError(field, lone_surrogate_message("A field name"))
                stack.append((item, depth + 1, key if top else field))


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _field_nested_too_deep(text):
    """The top-level field under which `text` nests past MAX_JSON_DEPTH, or "body".

    Used only when the parser gave up (RecursionError): the text it had read so far is valid
    JSON, so this scan stays in step with its strings, and it stops at the limit.
    """
    depth, key = 0, None
    for token in _TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                break
        elif mark in "]}":
            depth -= 1
        elif depth == 1:
            key = mark  # the last string at the top level before a nested value is its key
    if text.lstrip().startswith("{") and key is not None:
        try:
            return json.loads(key)
        except ValueError:
            pass
    return "body"


class StrictJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = stream.read().decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise BodyError("body", f"Malformed JSON: the body is not {encoding} text.") from exc
        try:
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except RecursionError:
            field = _field_nested_too_deep(text)
            raise BodyError(field, f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from None
        except ValueError as exc:
            raise BodyError("body", f"Malformed JSON: {exc}") from exc
        _check_json(data, text)
        return data


def _refuse_over_the_limit(parser_context):
    """Django checks the declared length of JSON and form bodies when they are read; multipart
    file parts it would stream to disk unbounded, so every body is checked here first."""
    meta = parser_context["request"].META
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")


class BoundedFormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_over_the_limit(parser_context)
        try:
            return super().parse(stream, media_type, parser_context)
        except TooManyFieldsSent as exc:
            raise BodyError("body", str(exc)) from exc


class BoundedMultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_over_the_limit(parser_context)
        try:
            return super().parse(stream, media_type, parser_context)
        except (TooManyFieldsSent, TooManyFilesSent) as exc:
            raise BodyError("body", str(exc)) from exc


# Configuration takes JSON only (its fields have JSON types); control takes forms as well, so an
# HTML form or `curl -d reason=...` can call it.
CONFIG_PARSERS = [StrictJSONParser]
CONTROL_PARSERS = [StrictJSONParser, BoundedFormParser, BoundedMultiPartParser]
