"""What went wrong, as one line and an exit code a script can rely on.

Exit codes of the client commands (vault, archive, job, inventory):

  0  success
  1  some files (or archives) failed; the others were done (each failure had its line)
  2  usage: a bad option or argument (click's own code)
  3  not found: no such vault, archive, job or upload on the endpoint, or not in the catalogue
  4  credentials missing or rejected, or access denied
  5  endpoint unreachable (connection refused, DNS, timeout)
  6  the endpoint refused the request for another reason (its error code is named)
  7  local problem: the catalogue or a local file cannot be used
  8  a retrieval or inventory job failed (its StatusMessage is shown)
  9  checksum mismatch: downloaded bytes do not match their tree hash (nothing kept)
  130 interrupted (Ctrl-C); an interrupted upload resumes when the command is run again
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

OK = 0
SOME_FAILED = 1
USAGE = 2
NOT_FOUND = 3
AUTH = 4
UNREACHABLE = 5
REFUSED = 6
LOCAL = 7
JOB_FAILED = 8
CHECKSUM = 9
INTERRUPTED = 130

AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "AccessDeniedException",
        "InvalidClientTokenId",
    }
)


class TransferError(Exception):
    """A failure with its exit code; str() is the one line to show."""

    def __init__(self, message: str, code: int = REFUSED) -> None:
        super().__init__(message)
        self.code = code


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error(exc: ClientError, what: str) -> TransferError:
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")) or code
    if code == "ResourceNotFoundException":
        return TransferError(f"not found: {what or message}", NOT_FOUND)
    if code in AUTH_CODES:
        return TransferError(f"credentials rejected: {code}: {message}", AUTH)
    return TransferError(f"{code}: {message}", REFUSED)


def _os_error(exc: BaseException) -> str:
    assert isinstance(exc, OSError)
    return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")


# (exception types, exit code, the line) in order: the first that matches wins.
_RULES: tuple[tuple[tuple[type[BaseException], ...], int, Callable[[BaseException], str]], ...] = (
    (
        (NoCredentialsError, PartialCredentialsError),
        AUTH,
        lambda e: (
            f"no usable credentials ({e}); set AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY or use --profile"
        ),
    ),
    ((ProfileNotFound,), AUTH, str),
    ((BotoConnectionError, HTTPClientError), UNREACHABLE, lambda e: f"endpoint unreachable: {e}"),
    ((BotoCoreError,), REFUSED, lambda e: f"{type(e).__name__}: {e}"),
    ((OSError,), LOCAL, _os_error),
)


def classify(exc: BaseException, what: str = "") -> TransferError:
    """The TransferError for an exception of boto3/botocore or the file system (or
    one already classified); `what` names the object for "not found" lines, e.g.
    "vault v". Anything else is re-raised: it is a bug, not a condition."""
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc, what)
    for types, code, line in _RULES:
        if isinstance(exc, types):
            return TransferError(line(exc), code)
    raise exc
