"""Output sinks for select jobs (spec 7.3): an S3-compatible store or a directory.

`s3+http://HOST:PORT` / `s3+https://...` write with boto3 (path-style
addressing, so any S3-compatible store works: SeaweedFS, MinIO, Ceph RGW, AWS);
`file:///DIR` writes DIR/BUCKET/KEY (temp file, fsync, rename). Library errors
become `StorageError` here, at the adapter boundary.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from openglacier.errors import StorageError
from openglacier.ports import OutputSink
from openglacier.streams import buffered


class S3Sink:
    def __init__(self, endpoint: str, access_key_id: str, secret_access_key: str, region: str):
        self.endpoint = endpoint
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def put(self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str) -> None:
        stream = buffered(chunks)
        try:
            self._client.upload_fileobj(
                stream, bucket, key, ExtraArgs={"ContentType": content_type}
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"Cannot write s3://{bucket}/{key}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


class DirectorySink:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str) -> None:
        target = (self.root / bucket / key).resolve()
        if self.root.resolve() not in target.parents:
            raise StorageError(f"output key escapes the output directory: {bucket}/{key}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                # Also when the chunks themselves raise (a select query failing
                # part-way): no object, and no temp file left behind.
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StorageError(f"Cannot write {target}: {exc}") from exc

    def close(self) -> None:
        return None


def open_output_sink(
    url: str, access_key_id: str, secret_access_key: str, region: str
) -> OutputSink:
    if not url:
        raise ValueError("select output is not configured")
    parts = urlsplit(url)
    if parts.scheme in ("s3+http", "s3+https"):
        endpoint = f"{parts.scheme.removeprefix('s3+')}://{parts.netloc}"
        return S3Sink(endpoint, access_key_id, secret_access_key, region)
    if parts.scheme == "file":
        return DirectorySink(Path(parts.path))
    raise ValueError(f"select output URL must be s3+http(s):// or file://, not {url!r}")
