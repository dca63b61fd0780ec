"""Our table of JSON member types (`api/json_shapes.py`) is botocore's Glacier model:
every JSON-bodied operation, every member, every nested structure, list and map."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.model import ListShape, MapShape, OperationModel, StructureShape

from openglacier.api.json_shapes import BODY_SHAPES, ListOf, MapOf, Scalar, Shape, Struct
from openglacier.api.routes import ROUTES, Body

MODEL = botocore.session.get_session().get_service_model("glacier")


def body_members(operation: OperationModel) -> StructureShape | None:
    """The structure whose members travel as the JSON body, if any."""
    shape = operation.input_shape
    if shape is None:
        return None
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        return member if isinstance(member, StructureShape) else None  # blob: streamed
    in_body = {n: m for n, m in shape.members.items() if "location" not in m.serialization}
    return shape if in_body else None


def ours(shape: Any) -> Shape:
    """botocore's shape in the table's terms; raises on a type the table cannot say."""
    if isinstance(shape, StructureShape):
        return Struct(
            {
                name: ours(member)
                for name, member in shape.members.items()
                if "location" not in member.serialization
            }
        )
    if isinstance(shape, ListShape):
        return ListOf(ours(shape.member))
    if isinstance(shape, MapShape):
        assert shape.key.type_name == "string"
        return MapOf(ours(shape.value))
    return Scalar(shape.type_name)


JSON_BODIED = sorted(
    name for name in MODEL.operation_names if body_members(MODEL.operation_model(name))
)


def test_the_table_covers_exactly_the_json_bodied_operations() -> None:
    assert sorted(BODY_SHAPES) == JSON_BODIED
    assert sorted(r.operation for r in ROUTES if r.body is Body.JSON) == JSON_BODIED


@pytest.mark.parametrize("operation", JSON_BODIED)
def test_member_types_match_the_model(operation: str) -> None:
    model_shape = body_members(MODEL.operation_model(operation))
    assert model_shape is not None
    assert BODY_SHAPES[operation] == ours(model_shape)


def test_limit_is_a_string_in_the_model() -> None:
    """The case that escaped before: a number where the model says string."""
    job = BODY_SHAPES["InitiateJob"].members["InventoryRetrievalParameters"]
    assert isinstance(job, Struct)
    assert job.members["Limit"] is Scalar.STRING
