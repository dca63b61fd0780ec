"""The S3 side of the ``s3+http(s)://`` blob store: URL, client, bucket, errors.

`S3Location.parse` reads ``s3+http://HOST:PORT/BUCKET[/PREFIX]``; `make_client`
builds one boto3 client (thread-safe, shared by every request of a process)
with path-style addressing, so any S3-compatible store answers by
configuration alone (SeaweedFS, Ceph RGW, Garage, AWS S3); `ensure_bucket`
creates the bucket if missing at start; `s3_errors` translates botocore's
exceptions at the adapter boundary (design 2). Every call has a bounded wait
(`CALL_DEADLINE`): a store that is down or hung fails it with StorageError.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from openglacier import allocator
from openglacier.errors import StorageError
from openglacier.storage.blobs import BlobAlreadyExistsError, BlobNotFoundError
from openglacier.storage.blobs.opening import BlobStoreOpenError

SCHEMES = ("s3+http", "s3+https")
DEFAULT_REGION = "us-east-1"
# S3's bucket naming rules (the portable subset every S3-compatible store accepts).
_BUCKET_RE = re.compile(r"\A[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchUpload"})
_PRECONDITION = frozenset({"PreconditionFailed", "412"})
_DENIED = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
)


@dataclass(frozen=True)
class S3Location:
    endpoint: str  # http(s)://HOST:PORT
    bucket: str
    prefix: str  # "" or "some/prefix/" (always ends with "/")

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """Raise ValueError (with what to use instead) for a malformed URL."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError("use s3+http://HOST:PORT/BUCKET[/PREFIX] or s3+https://...")
        if parts.username or parts.password:
            raise ValueError(
                "put the keys in OPENGLACIER_BLOB_ACCESS_KEY_ID and "
                "OPENGLACIER_BLOB_SECRET_ACCESS_KEY, not in the URL"
            )
        if parts.query or parts.fragment:
            raise ValueError("an s3 blob URL takes no query or fragment")
        bucket, _, prefix = unquote(parts.path).strip("/").partition("/")
        if not _BUCKET_RE.match(bucket):
            raise ValueError(
                f"bucket {bucket!r} is not a valid S3 bucket name (3-63 characters: "
                "lowercase letters, digits, dots and hyphens)"
            )
        prefix = "/".join(p for p in prefix.split("/") if p)
        endpoint = f"{parts.scheme.removeprefix('s3+')}://{parts.netloc}"
        return cls(endpoint, bucket, f"{prefix}/" if prefix else "")

    @property
    def url(self) -> str:
        return f"s3+{self.endpoint}/{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class S3Credentials:
    """Empty keys mean boto3's own chain (AWS_ACCESS_KEY_ID..., ~/.aws, roles)."""

    access_key_id: str = ""
    secret_access_key: str = ""
    region: str = ""


# A store that is down or stalled must fail a request in bounded time, so the
# API answers ServiceUnavailableException instead of holding the client (and a
# worker thread) for minutes. Each attempt waits at most CONNECT_TIMEOUT to
# connect and READ_TIMEOUT for each answer (the first byte, the next bytes of a
# body, or room to send more of ours); ATTEMPTS bounds the tries. A second try
# covers what a retry mends (a keep-alive connection the store closed, a 503
# while it restarts); a third would only stretch an outage. Standard mode waits
# at most 1 s before the second try.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
ATTEMPTS = 2
# The longest one call waits for an answer: a refused or reset connection fails
# in about 1 s, an unreachable host in 11 s, a store that accepts and never
# answers in 21 s. (A body already streaming is bounded per read, not in total.)
CALL_DEADLINE = ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + 1.0


def make_client(location: S3Location, credentials: S3Credentials, pool_size: int) -> Any:
    # Part buffers (8 MiB, filled on a request's thread, freed on an upload
    # thread) must go back to the OS when freed: allocator.py says how.
    allocator.tune()
    config = Config(
        # Bodies are not hashed into the signature (botocore would, over plain
        # http, with SHA-256 at ~2 GB/s a core): the writer sends each body's
        # CRC32C instead, which the store checks (s3_checksum.py). botocore
        # documents this option; it applies with request checksums "when_required".
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        # total_max_attempts counts the first try; botocore's max_attempts does not.
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        # One connection per concurrent request (uploads in flight, readers open).
        max_pool_connections=pool_size,
        # Our tree hashes check every byte end to end (design 1.2); botocore's
        # default CRC32 of every body would only add CPU per byte.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=location.endpoint,
        region_name=credentials.region or DEFAULT_REGION,
        aws_access_key_id=credentials.access_key_id or None,
        aws_secret_access_key=credentials.secret_access_key or None,
        config=config,
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def retried(exc: ClientError) -> bool:
    """Whether botocore sent the request more than once (the first may have landed)."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) > 0


@contextmanager
def s3_errors(what: str, key: str | None = None) -> Iterator[None]:
    """botocore's exceptions as ours: missing -> BlobNotFoundError, a failed
    If-None-Match -> BlobAlreadyExistsError, anything else -> StorageError (a
    gateway that is down included, so the API answers a clean 5xx)."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if key is not None and code in _NOT_FOUND:
            raise BlobNotFoundError(errno.ENOENT, "no such blob", key) from None
        if key is not None and code in _PRECONDITION and not retried(exc):
            raise BlobAlreadyExistsError(errno.EEXIST, "blob already exists", key) from None
        raise StorageError(f"{what}: {code}: {_message(exc)}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"{what}: {exc}") from exc


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


def ensure_bucket(client: Any, location: S3Location, region: str) -> None:
    """Create the bucket if it is missing; a one-line `BlobStoreOpenError` if the
    store cannot be reached or used."""
    where = f"blob store {location.url}"
    try:
        client.head_bucket(Bucket=location.bucket)
        return
    except ClientError as exc:
        code = error_code(exc)
        if code in _DENIED:
            raise BlobStoreOpenError(
                f"{where}: access denied ({code}); check OPENGLACIER_BLOB_ACCESS_KEY_ID "
                "and OPENGLACIER_BLOB_SECRET_ACCESS_KEY"
            ) from None
        if code not in _NOT_FOUND and code != "NoSuchBucket":
            raise BlobStoreOpenError(f"{where}: {code}: {_message(exc)}") from None
    except NoCredentialsError:
        raise BlobStoreOpenError(
            f"{where}: no credentials; set OPENGLACIER_BLOB_ACCESS_KEY_ID and "
            "OPENGLACIER_BLOB_SECRET_ACCESS_KEY"
        ) from None
    except BotoCoreError as exc:
        raise BlobStoreOpenError(
            f"{where}: cannot reach {location.endpoint} ({exc}); check that the S3 "
            "endpoint is running and --blob-url is right"
        ) from None
    _create_bucket(client, location, region, where)


def _create_bucket(client: Any, location: S3Location, region: str, where: str) -> None:
    args: dict[str, Any] = {"Bucket": location.bucket}
    if region and region != DEFAULT_REGION:
        # AWS refuses a bucket outside us-east-1 without its location.
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**args)
    except ClientError as exc:
        code = error_code(exc)
        if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists") and _exists(client, location):
            return  # another node created it at the same moment
        raise BlobStoreOpenError(
            f"{where}: bucket {location.bucket!r} does not exist and cannot be created "
            f"({code}: {_message(exc)}); create it or fix --blob-url"
        ) from None
    except BotoCoreError as exc:
        raise BlobStoreOpenError(f"{where}: cannot create bucket: {exc}") from None


def _exists(client: Any, location: S3Location) -> bool:
    try:
        client.head_bucket(Bucket=location.bucket)
    except (ClientError, BotoCoreError):
        return False
    return True
