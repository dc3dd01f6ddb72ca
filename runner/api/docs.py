"""The error responses each kind of endpoint documents in the OpenAPI schema."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

from runner.api.serializers import ErrorSerializer, RefusedSerializer, SeedErrorSerializer

VALIDATION = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Invalid input: {"<field>": ["message naming the allowed values"]}.',
)
UNAUTHENTICATED = OpenApiResponse(ErrorSerializer, description="No or invalid credentials.")
FORBIDDEN = OpenApiResponse(
    ErrorSerializer, description="Lacks the permission (control requests are audited as refused)."
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such agent or record.")
REFUSED = OpenApiResponse(
    RefusedSerializer, description="Not allowed from the agent's current state; nothing changed."
)
THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many control requests; retry later.")
UNSUPPORTED = OpenApiResponse(ErrorSerializer, description="The body is not JSON.")
CONTROL_UNSUPPORTED = OpenApiResponse(
    ErrorSerializer, description="The body is not JSON, a form or multipart."
)
TOO_LARGE = OpenApiResponse(
    ErrorSerializer, description="The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."
)

READ_ERRORS = {401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND}
QUERY_ERRORS = {400: VALIDATION, 401: UNAUTHENTICATED, 403: FORBIDDEN}
LIST_ERRORS = {**QUERY_ERRORS, 404: NOT_FOUND}
WRITE_ERRORS = {**READ_ERRORS, 400: VALIDATION, 413: TOO_LARGE, 415: UNSUPPORTED}
CONTROL_ERRORS = {**WRITE_ERRORS, 409: REFUSED, 415: CONTROL_UNSUPPORTED, 429: THROTTLED}

SEED_INVALID = OpenApiResponse(
    SeedErrorSerializer,
    description='Refused or invalid, in the seed\'s shape: {"detail": "Agent is already running"}.',
)
SEED_READ_ERRORS = {401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND}
SEED_CONTROL_ERRORS = {
    **SEED_READ_ERRORS,
    400: SEED_INVALID,
    413: TOO_LARGE,
    415: CONTROL_UNSUPPORTED,
    429: THROTTLED,
}
