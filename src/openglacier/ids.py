"""Opaque identifiers with the lengths and alphabet of spec 1.4.

All IDs come from the CSPRNG (`secrets`), in the URL-safe base64 alphabet
`[A-Za-z0-9_-]`, so they are safe as URI labels and never derived from content.
"""

from __future__ import annotations

import re
import secrets

ARCHIVE_ID_LEN = 138
JOB_ID_LEN = 92
UPLOAD_ID_LEN = 92
LOCK_ID_LEN = 24
CAPACITY_ID_LEN = 24
REQUEST_ID_LEN = 47
BLOB_KEY_LEN = 32

_ID_RE = re.compile(r"\A[A-Za-z0-9_-]+\Z")


def _token(length: int) -> str:
    # token_urlsafe(n) yields ceil(4n/3) characters from the alphabet above.
    # Never a leading "-": argparse-based clients (the AWS CLI among them) read
    # `--upload-id -AbC...` as a missing value and a new option (1 ID in 64).
    while True:
        token = secrets.token_urlsafe((length * 3) // 4 + 1)[:length]
        if not token.startswith("-"):
            return token


def new_archive_id() -> str:
    return _token(ARCHIVE_ID_LEN)


def new_job_id() -> str:
    return _token(JOB_ID_LEN)


def new_upload_id() -> str:
    return _token(UPLOAD_ID_LEN)


def new_lock_id() -> str:
    return _token(LOCK_ID_LEN)


def new_capacity_id() -> str:
    return _token(CAPACITY_ID_LEN)


def new_request_id() -> str:
    return _token(REQUEST_ID_LEN)


def new_blob_key() -> str:
    """Blob keys are ours alone (design 4): lowercase hex, so safe on every filesystem."""
    return secrets.token_hex(BLOB_KEY_LEN // 2)


def new_access_key_id() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "OGAK" + "".join(secrets.choice(alphabet) for _ in range(16))


def new_secret_access_key() -> str:
    return secrets.token_urlsafe(30)[:40]


def new_account_id() -> str:
    """A 12-digit account id that does not start with 0 (some tools strip zeros)."""
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def looks_like_id(value: str, length: int) -> bool:
    return len(value) == length and _ID_RE.match(value) is not None
