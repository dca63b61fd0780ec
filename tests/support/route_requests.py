"""A plausible request for every route of the table, naming things that exist in the
world `support.malformed.restore` builds (vault "v" with an archive, an upload and a
job; vault "empty" with a lock in progress): executed, each would do something."""

from __future__ import annotations

import json
from urllib.parse import quote

from openglacier.api.routes import Route
from openglacier.treehash import tree_hash
from support.malformed import EVENTS, MIB, POLICY, TOPIC
from support.signing import upload_headers

DATA = b"data"
JSON_BODIES = {
    "AddTagsToVault": {"Tags": {"k": "v"}},
    "RemoveTagsFromVault": {"TagKeys": ["k"]},
    "SetVaultNotifications": {"SNSTopic": TOPIC, "Events": EVENTS},
    "SetVaultAccessPolicy": {"Policy": POLICY},
    "InitiateVaultLock": {"Policy": POLICY},
    "InitiateJob": {"Type": "inventory-retrieval"},
    "SetDataRetrievalPolicy": {"Policy": {"Rules": [{"Strategy": "None"}]}},
}
TREE_HASH = tree_hash(DATA)
HEADERS = {
    "UploadArchive": upload_headers(DATA, "d"),
    "UploadMultipartPart": {
        "Content-Range": "bytes 0-3/*",
        "x-amz-sha256-tree-hash": tree_hash(DATA),
    },
    "InitiateMultipartUpload": {"x-amz-part-size": str(MIB)},
    "CompleteMultipartUpload": {
        "x-amz-archive-size": "4",
        "x-amz-sha256-tree-hash": tree_hash(DATA),
    },
}


def concrete(route: Route, ids: dict[str, list[str]]) -> str:
    """The route's path with real labels (no query)."""
    path = route.path.replace("{accountId}", "-")
    path = path.replace("{vaultName}", "empty" if "{lockId}" in path else "v")
    for name in ("archiveId", "uploadId", "jobId", "lockId"):
        path = path.replace("{" + name + "}", quote(ids[name][0], safe=""))
    return path


def target(route: Route, ids: dict[str, list[str]]) -> str:
    """Path and query, as botocore's model writes them."""
    return concrete(route, ids) + (f"?{route.query[0]}={route.query[1]}" if route.query else "")


def body_and_headers(route: Route) -> tuple[bytes, dict[str, str]]:
    if route.operation in JSON_BODIES:
        return json.dumps(JSON_BODIES[route.operation]).encode(), {}
    if route.operation in ("UploadArchive", "UploadMultipartPart"):
        return DATA, dict(HEADERS[route.operation])
    return b"", dict(HEADERS.get(route.operation, {}))
