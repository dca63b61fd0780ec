"""What `GET /health/ready` checks (api/front.py): the metadata store answers,
its schema is at this code's newest migration, the blob store answers.

Each check is a blocking call that raises when not ready; the front runs them
on worker threads with a time limit. The blob store is asked for one page of
one key (a listing), which needs no blob to exist and reads no payload.
"""

from __future__ import annotations

from collections.abc import Callable

from openglacier.errors import StorageError
from openglacier.ports import BlobStore, MetadataStore
from openglacier.storage.migrations import HEAD_REVISION


def readiness_checks(
    store: MetadataStore, blobs: BlobStore
) -> list[tuple[str, Callable[[], None]]]:
    def metadata() -> None:
        store.schema_revision()

    def migrations() -> None:
        at = store.schema_revision()
        if at != HEAD_REVISION:
            raise StorageError(f"schema at migration {at}, this version needs {HEAD_REVISION}")

    def blob_store() -> None:
        blobs.scan(None, 1)

    return [("metadata", metadata), ("migrations", migrations), ("blob_store", blob_store)]
