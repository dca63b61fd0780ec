"""Property-based malformed input over every Glacier operation (hypothesis).

Requests are generated from botocore's Glacier model: every operation's path labels,
query parameters, headers and JSON body members, each either plausible (so requests
get past the early checks) or hostile (wrong JSON types, lone surrogates, NUL and
control characters, huge and deeply nested values, bad numbers), signed with
botocore's signer and sent to the in-process app over a real SQLite file and real
blob files. For every request:

- no 5xx;
- every error is Glacier-shaped: JSON `{"code","message","type"}`, `x-amzn-RequestId`,
  `x-amzn-ErrorType` equal to the code;
- a refused request changes nothing: every metadata table and every blob file is the
  same before and after.

The app runs without its lifespan, so no background loop (job runner, blob deleter)
changes the state between the two snapshots. Hypothesis runs derandomized without an
example database: the same examples every run, and no `.hypothesis` directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from hypothesis import given, settings
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
    TOPIC,
    WRONG_JSON,
    Generated,
    World,
    check_request,
    label,
    open_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("properties")) as opened:
        yield opened


# --- values from the model -------------------------------------------------------------

PLAUSIBLE: dict[str, list[str]] = {
    "Type": ["archive-retrieval", "inventory-retrieval", "select"],
    "Tier": ["Standard", "Bulk", "Expedited"],
    "Format": ["CSV", "JSON"],
    "Strategy": ["BytesPerHour", "FreeTier", "None"],
    "SNSTopic": [TOPIC],
    "Policy": [POLICY],
    "RetrievalByteRange": ["0-1048575", "0-2999", "1-0"],
    "StartDate": ["2020-01-01T00:00:00Z"],
    "EndDate": ["2030-01-01T00:00:00Z"],
    "Limit": ["1", "0", "-1"],
    "ExpressionType": ["SQL"],
    "Expression": ["select * from archive", "select s._1 from archive s where"],
    "FileHeaderInfo": ["USE", "IGNORE", "NONE"],
    "QuoteFields": ["ALWAYS", "ASNEEDED"],
}


def json_value(shape: Shape, name: str, world: World, depth: int = 0) -> st.SearchStrategy[Any]:
    """A value for a body member: mostly of the model's type, else any JSON value."""
    if depth >= 6:
        return WRONG_JSON
    typed = _typed(shape, name, world, depth)
    return st.one_of(typed, typed, typed, WRONG_JSON)


def _typed(shape: Shape, name: str, world: World, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(shape, StructureShape):
        optional = {n: json_value(m, n, world, depth + 1) for n, m in shape.members.items()}
        return st.fixed_dictionaries({}, optional=optional)
    if isinstance(shape, ListShape):
        member = EVENTS if name == "Events" else []
        return st.lists(
            st.one_of(
                st.sampled_from(member or ["k"]), json_value(shape.member, "", world, depth + 1)
            ),
            max_size=4,
        )
    if isinstance(shape, MapShape):
        return st.dictionaries(
            NASTY_TEXT, json_value(shape.value, "", world, depth + 1), max_size=4
        )
    if shape.type_name == "long":
        return st.one_of(st.integers(min_value=-(2**64), max_value=2**64), st.just(1024))
    plausible = PLAUSIBLE.get(name, []) + world.ids.get(name[:1].lower() + name[1:], [])
    return st.one_of(st.sampled_from(plausible), NASTY_TEXT) if plausible else NASTY_TEXT


def body_strategy(op: OperationModel, world: World) -> st.SearchStrategy[bytes]:
    shape = op.input_shape
    payload = shape.serialization.get("payload")
    raw = st.one_of(st.binary(max_size=64), st.sampled_from(DEEP))
    if payload is not None and not isinstance(shape.members[payload], StructureShape):
        return st.one_of(st.binary(max_size=64), st.just(b"p" * MIB))
    if payload is not None:
        document = _typed(shape.members[payload], "", world, 0)
    else:
        in_body = {
            n: json_value(m, n, world)
            for n, m in shape.members.items()
            if "location" not in m.serialization
        }
        if not in_body:
            return st.one_of(st.just(b""), raw)
        document = st.fixed_dictionaries({}, optional=in_body)
    if op.name == "InitiateJob":  # also the wrapped form (spec 2.26 [R])
        document = st.one_of(document, document.map(lambda d: {"jobParameters": d}))
    encoded = st.one_of(document, document, document, WRONG_JSON).map(
        lambda d: json.dumps(d).encode()
    )
    return st.one_of(encoded, encoded, encoded, raw)


# --- requests -----------------------------------------------------------------------


@st.composite
def requests(draw: st.DrawFn, world: World, operation: str) -> Generated:
    op = MODEL.operation_model(operation)
    path, _, fixed_query = op.http["requestUri"].partition("?")
    members = op.input_shape.members.items()
    for name, shape in members:
        if shape.serialization.get("location") == "uri":
            known = world.ids.get(name, [])
            plausible = known and draw(st.integers(0, 7))  # mostly: reach deeper checks
            value = draw(st.sampled_from(known) if plausible else NASTY_TEXT)
            path = path.replace("{" + name + "}", label(value))
    query = [fixed_query] if fixed_query else []
    headers: dict[str, str] = {}
    body = draw(body_strategy(op, world))
    for _name, shape in members:
        where, wire = shape.serialization.get("location"), shape.serialization.get("name")
        if where == "querystring" and draw(st.booleans()):
            query.append(f"{wire}={label(draw(NASTY_TEXT))}")
        elif where == "header" and draw(st.integers(0, 3)):
            headers[wire] = draw(st.one_of(HEADER_TEXT, st.just(header_default(wire, body))))
    target = path + ("?" + "&".join(query) if query else "")
    return Generated(op.name, op.http["method"], target, headers, body)


def header_default(name: str, body: bytes) -> str:
    return {
        "x-amz-sha256-tree-hash": tree_hash(body),
        "x-amz-part-size": str(MIB),
        "x-amz-archive-size": str(len(body)),
        "Content-Range": f"bytes 0-{max(len(body) - 1, 0)}/*",
        "Range": "bytes=0-99",
    }.get(name, "description")


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(SETTINGS, max_examples=8)
@given(data=st.data())
def test_malformed_requests_never_fail_the_server(
    world: World, operation: str, data: st.DataObject
) -> None:
    request = data.draw(requests(world, operation))
    check_request(world, request)
