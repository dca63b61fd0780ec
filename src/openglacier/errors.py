"""Glacier error hierarchy (spec 1.8).

One class per Glacier error code; each carries the code, HTTP status and fault type
as class attributes, so the API layer renders every error with one function
(`api/errors.py`). Domain and storage code raise these; nothing else reaches a client.
"""

from __future__ import annotations

from typing import ClassVar


class GlacierError(Exception):
    """Base of every error a client may see."""

    code: ClassVar[str] = "ServiceUnavailableException"
    http_status: ClassVar[int] = 500
    fault: ClassVar[str] = "Server"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessDeniedException(GlacierError):
    code = "AccessDeniedException"
    http_status = 403
    fault = "Client"


class BadRequest(GlacierError):
    code = "BadRequest"
    http_status = 400
    fault = "Client"


class ExpiredTokenException(GlacierError):
    code = "ExpiredTokenException"
    http_status = 403
    fault = "Client"


class InsufficientCapacityException(GlacierError):
    # spec 9 #1: 503 so that SDKs retry automatically.
    code = "InsufficientCapacityException"
    http_status = 503
    fault = "Server"


class InvalidParameterValueException(GlacierError):
    code = "InvalidParameterValueException"
    http_status = 400
    fault = "Client"


class InvalidSignatureException(GlacierError):
    code = "InvalidSignatureException"
    http_status = 403
    fault = "Client"


class LimitExceededException(GlacierError):
    code = "LimitExceededException"
    http_status = 400
    fault = "Client"


class MissingAuthenticationTokenException(GlacierError):
    code = "MissingAuthenticationTokenException"
    http_status = 400
    fault = "Client"


class MissingParameterValueException(GlacierError):
    code = "MissingParameterValueException"
    http_status = 400
    fault = "Client"


class NoLongerSupportedException(GlacierError):
    code = "NoLongerSupportedException"
    http_status = 400
    fault = "Client"


class PolicyEnforcedException(GlacierError):
    code = "PolicyEnforcedException"
    http_status = 400
    fault = "Client"


class RequestTimeoutException(GlacierError):
    code = "RequestTimeoutException"
    http_status = 408
    fault = "Client"


class ResourceNotFoundException(GlacierError):
    code = "ResourceNotFoundException"
    http_status = 404
    fault = "Client"


class SerializationException(GlacierError):
    code = "SerializationException"
    http_status = 400
    fault = "Client"


class ServiceUnavailableException(GlacierError):
    code = "ServiceUnavailableException"
    http_status = 500
    fault = "Server"


class ThrottlingException(GlacierError):
    code = "ThrottlingException"
    http_status = 400
    fault = "Client"


class UnrecognizedClientException(GlacierError):
    code = "UnrecognizedClientException"
    http_status = 400
    fault = "Client"


class MethodNotAllowed(InvalidParameterValueException):
    """Spec 1.2 [R]: a known path with a method it does not take is 405."""

    http_status = 405


class StorageError(ServiceUnavailableException):
    """An adapter failed for reasons that are not the client's (disk, database).

    Its message names paths and endpoints, so clients get a generic one, or
    `client_message` when the failure has one that is safe to show."""

    client_message: str | None = None


class IntegrityError(ServiceUnavailableException):
    """Stored bytes no longer match their recorded hashes (bit rot, truncation)."""
