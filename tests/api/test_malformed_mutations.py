"""One hostile field in an otherwise valid request, for every operation (hypothesis).

Where `test_malformed_properties.py` makes whole requests up, this suite starts from
a request that succeeds (or fails only for its state) and replaces exactly one thing:
a path label, a query parameter, a header, the whole body, or one JSON member at any
depth of botocore's model, by a lone surrogate, NUL, a control character, a huge or
deeply nested value, a bad number or a value of another JSON type. Every other field
being valid, the hostile one reaches the deepest check that reads it. The same three
properties hold: no 5xx, Glacier's error shape, nothing changed by a refusal.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape
from hypothesis import event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from openglacier.treehash import tree_hash
from support.malformed import (
    DEEP,
    EVENTS,
    HEADER_TEXT,
    MIB,
    MODEL,
    NASTY_TEXT,
    OPERATIONS,
    POLICY,
    SETTINGS,
    STORES,
    TOPIC,
    WRONG_JSON,
    Generated,
    World,
    check_request,
    label,
    world_on,
)

PART = b"abc"
LOCK_VAULT_OPERATIONS = {"AbortVaultLock", "CompleteVaultLock", "GetVaultLock"}


@pytest.fixture(scope="module", params=STORES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with world_on(request.param, tmp_path_factory.mktemp("mutations"), request) as opened:
        yield opened


@dataclass
class Baseline:
    """A valid request for one operation, field by field."""

    operation: str
    labels: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = b""  # bytes, or a JSON document

    def request(self) -> Generated:
        op = MODEL.operation_model(self.operation)
        path, _, fixed = op.http["requestUri"].partition("?")
        for name, value in self.labels.items():
            path = path.replace("{" + name + "}", label(value))
        query = [fixed] if fixed else []
        query += [f"{k}={label(v)}" for k, v in self.query.items()]
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        target = path + ("?" + "&".join(query) if query else "")
        return Generated(self.operation, op.http["method"], target, dict(self.headers), body)


def job_bodies(archive: str) -> list[dict[str, Any]]:
    csv = {"FieldDelimiter": ",", "RecordDelimiter": "\n", "QuoteCharacter": '"'}
    return [
        {"Type": "archive-retrieval", "ArchiveId": archive, "Tier": "Bulk", "SNSTopic": TOPIC},
        {
            "Type": "inventory-retrieval",
            "Format": "JSON",
            "Description": "inventory",
            "InventoryRetrievalParameters": {
                "StartDate": "2000-01-01T00:00:00Z",
                "EndDate": "2100-01-01T00:00:00Z",
                "Limit": "10",
            },
        },
        {
            "Type": "select",
            "ArchiveId": archive,
            "SelectParameters": {
                "InputSerialization": {"csv": {**csv, "FileHeaderInfo": "NONE"}},
                "ExpressionType": "SQL",
                "Expression": "select * from archive",
                "OutputSerialization": {"csv": {**csv, "QuoteFields": "ASNEEDED"}},
            },
            "OutputLocation": {
                "S3": {
                    "BucketName": "b",
                    "Prefix": "p",
                    "Encryption": {"EncryptionType": "AES256"},
                    "AccessControlList": [
                        {"Grantee": {"Type": "CanonicalUser", "ID": "i"}, "Permission": "READ"}
                    ],
                    "Tagging": {"k": "v"},
                    "UserMetadata": {"k": "v"},
                    "StorageClass": "STANDARD",
                }
            },
        },
    ]


BODIES: dict[str, Any] = {
    "AddTagsToVault": {"Tags": {"k": "v"}},
    "RemoveTagsFromVault": {"TagKeys": ["k"]},
    "SetVaultNotifications": {"SNSTopic": TOPIC, "Events": EVENTS},
    "SetVaultAccessPolicy": {"Policy": POLICY},
    "InitiateVaultLock": {"Policy": POLICY},
    "SetDataRetrievalPolicy": {
        "Policy": {"Rules": [{"Strategy": "BytesPerHour", "BytesPerHour": 10**15}]}
    },
    "UploadArchive": PART,
    "UploadMultipartPart": PART,
}
HEADERS: dict[str, dict[str, str]] = {
    "UploadArchive": {"x-amz-sha256-tree-hash": tree_hash(PART), "x-amz-archive-description": "d"},
    "UploadMultipartPart": {
        "Content-Range": f"bytes 0-{len(PART) - 1}/*",
        "x-amz-sha256-tree-hash": tree_hash(PART),
    },
    "CompleteMultipartUpload": {
        "x-amz-archive-size": str(len(PART)),
        "x-amz-sha256-tree-hash": tree_hash(PART),
    },
    "InitiateMultipartUpload": {"x-amz-part-size": str(MIB), "x-amz-archive-description": "d"},
    "GetJobOutput": {"Range": "bytes=0-99"},
}
QUERIES: dict[str, dict[str, str]] = {
    "ListJobs": {"limit": "2", "statuscode": "InProgress", "completed": "false"},
    "ListVaults": {"limit": "2"},
    "ListMultipartUploads": {"limit": "2"},
    "ListParts": {"limit": "2"},
}


def baselines(world: World, operation: str) -> list[Baseline]:
    labels = {name: values[0] for name, values in world.ids.items()}
    if operation in LOCK_VAULT_OPERATIONS:
        labels["vaultName"] = "empty"
    uri = MODEL.operation_model(operation).http["requestUri"]
    labels = {k: v for k, v in labels.items() if "{" + k + "}" in uri}
    bodies = job_bodies(labels.get("archiveId", "")) if operation == "InitiateJob" else []
    return [
        Baseline(
            operation,
            labels,
            dict(QUERIES.get(operation, {})),
            dict(HEADERS.get(operation, {})),
            copy.deepcopy(body),
        )
        for body in bodies or [BODIES.get(operation, b"")]
    ]


# --- where and what to change -----------------------------------------------------------

MemberPath = tuple[str | int, ...]


def member_paths(shape: Shape, prefix: MemberPath = ()) -> list[MemberPath]:
    """Every member of a body shape at every depth: lists by index 0, maps by key "k"."""
    paths: list[MemberPath] = []
    if isinstance(shape, StructureShape):
        for name, member in shape.members.items():
            if "location" not in member.serialization:
                paths.append((*prefix, name))
                paths.extend(member_paths(member, (*prefix, name)))
    elif isinstance(shape, ListShape):
        paths.append((*prefix, 0))
        paths.extend(member_paths(shape.member, (*prefix, 0)))
    elif isinstance(shape, MapShape):
        paths.append((*prefix, "k"))
        paths.extend(member_paths(shape.value, (*prefix, "k")))
    return paths


def body_paths(operation: str) -> list[MemberPath]:
    shape = MODEL.operation_model(operation).input_shape
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        return member_paths(member) if isinstance(member, StructureShape) else []
    return member_paths(shape)


def put(document: Any, path: MemberPath, value: Any) -> Any:
    """`document` with the member at `path` set to `value`, containers made as needed."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(document) if isinstance(document, list) and document else [None]
        items[0] = put(items[0], rest, value)
        return items
    mapping = dict(document) if isinstance(document, dict) else {}
    mapping[head] = put(mapping.get(head), rest, value)
    return mapping


NESTED = st.integers(33, 3000).map(lambda n: json.loads("[" * min(n, 900) + "]" * min(n, 900)))
MEMBER_VALUES = st.one_of(NASTY_TEXT, WRONG_JSON, NESTED)
WHOLE_BODIES = st.one_of(
    st.sampled_from(DEEP), st.binary(max_size=64), WRONG_JSON.map(lambda v: json.dumps(v).encode())
)


@st.composite
def mutated(draw: st.DrawFn, world: World, operation: str) -> Generated:
    baseline = draw(st.sampled_from(baselines(world, operation)))
    op = MODEL.operation_model(operation)
    members = op.input_shape.members.values()
    places = [("label", name) for name in baseline.labels]
    places += [("query", m.serialization["name"]) for m in members if _where(m) == "querystring"]
    places += [("header", m.serialization["name"]) for m in members if _where(m) == "header"]
    places += [("body", "")]
    kind, name = draw(st.sampled_from(places))
    if kind == "label":
        baseline.labels[name] = draw(NASTY_TEXT)
    elif kind == "query":
        baseline.query[name] = draw(NASTY_TEXT)
    elif kind == "header":
        baseline.headers[name] = draw(HEADER_TEXT)
    else:
        baseline.body = draw(WHOLE_BODIES)
    event(f"{kind} {name}")
    return baseline.request()


def _where(member: Shape) -> str | None:
    location: str | None = member.serialization.get("location")
    return location


@pytest.mark.parametrize("operation", OPERATIONS)
@SETTINGS
@given(data=st.data())
def test_one_hostile_parameter(world: World, operation: str, data: st.DataObject) -> None:
    check_request(world, data.draw(mutated(world, operation)))


MEMBERS = [(op, path) for op in OPERATIONS for path in body_paths(op)]


@pytest.mark.parametrize(
    ("operation", "path"), MEMBERS, ids=[f"{op}-{'.'.join(map(str, p))}" for op, p in MEMBERS]
)
@hypothesis_settings(SETTINGS, max_examples=2)
@given(data=st.data())
def test_one_hostile_json_member(
    world: World, operation: str, path: MemberPath, data: st.DataObject
) -> None:
    baseline = data.draw(st.sampled_from(baselines(world, operation)))
    baseline.body = put(baseline.body, path, data.draw(MEMBER_VALUES))
    check_request(world, baseline.request())
