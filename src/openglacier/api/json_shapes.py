"""The JSON type of every request body member, per operation (spec 1.7, 2.x).

One declarative table, written from botocore's Glacier service model
(`glacier/2012-06-01/service-2.json`); `tests/api/test_input_json_types.py` walks
the model and fails if the two ever disagree. Every JSON-bodied request is
checked against it in `check_body` before a handler sees it, so a member of the
wrong JSON type is a 400 `SerializationException` (spec 1.8: "wrong JSON types")
wherever it sits, not whatever the domain code happens to do with it.

Unknown members are ignored (spec 1.7 [R]) and a null member counts as absent,
at every level of a structure. Values are checked for type only: ranges,
enumerations and formats stay with the domain rules that give them meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from openglacier.api.protocol import parse_json_object
from openglacier.domain.jobs.params import unwrap
from openglacier.errors import SerializationException


class Scalar(Enum):
    """botocore's scalar type names, as they appear in the model."""

    STRING = "string"
    LONG = "long"


@dataclass(frozen=True)
class Struct:
    members: Mapping[str, Shape]


@dataclass(frozen=True)
class ListOf:
    member: Shape


@dataclass(frozen=True)
class MapOf:
    value: Shape  # JSON object keys are strings by construction


Shape = Scalar | Struct | ListOf | MapOf

S = Scalar.STRING
STRING_MAP = MapOf(S)


def _strings(*names: str) -> dict[str, Shape]:
    return dict.fromkeys(names, S)


_CSV_INPUT = Struct(
    _strings(
        "FileHeaderInfo",
        "Comments",
        "QuoteEscapeCharacter",
        "RecordDelimiter",
        "FieldDelimiter",
        "QuoteCharacter",
    )
)
_CSV_OUTPUT = Struct(
    _strings(
        "QuoteFields", "QuoteEscapeCharacter", "RecordDelimiter", "FieldDelimiter", "QuoteCharacter"
    )
)
_GRANT = Struct(
    {
        "Grantee": Struct(_strings("Type", "DisplayName", "URI", "ID", "EmailAddress")),
        "Permission": S,
    }
)
_S3_LOCATION = Struct(
    {
        **_strings("BucketName", "Prefix", "CannedACL", "StorageClass"),
        "Encryption": Struct(_strings("EncryptionType", "KMSKeyId", "KMSContext")),
        "AccessControlList": ListOf(_GRANT),
        "Tagging": STRING_MAP,
        "UserMetadata": STRING_MAP,
    }
)
JOB_PARAMETERS = Struct(
    {
        **_strings(
            "Format", "Type", "ArchiveId", "Description", "SNSTopic", "RetrievalByteRange", "Tier"
        ),
        # Limit is a JSON string ("120000"), not a number (spec 1.7).
        "InventoryRetrievalParameters": Struct(_strings("StartDate", "EndDate", "Limit", "Marker")),
        "SelectParameters": Struct(
            {
                "InputSerialization": Struct({"csv": _CSV_INPUT}),
                "ExpressionType": S,
                "Expression": S,
                "OutputSerialization": Struct({"csv": _CSV_OUTPUT}),
            }
        ),
        "OutputLocation": Struct({"S3": _S3_LOCATION}),
    }
)
_POLICY_TEXT = Struct({"Policy": S})

# The body's own shape: for operations whose model input has a payload member,
# that payload structure (SDKs send its members at the top level).
BODY_SHAPES: dict[str, Struct] = {
    "AddTagsToVault": Struct({"Tags": STRING_MAP}),
    "RemoveTagsFromVault": Struct({"TagKeys": ListOf(S)}),
    "SetVaultNotifications": Struct({"SNSTopic": S, "Events": ListOf(S)}),
    "SetVaultAccessPolicy": _POLICY_TEXT,
    "InitiateVaultLock": _POLICY_TEXT,
    "InitiateJob": JOB_PARAMETERS,
    "SetDataRetrievalPolicy": Struct(
        {"Policy": Struct({"Rules": ListOf(Struct({"Strategy": S, "BytesPerHour": Scalar.LONG}))})}
    ),
}

_TYPE_NAMES = {Scalar.STRING: "a string", Scalar.LONG: "an integer"}


def parse_json_body(operation: str, body: bytes) -> dict[str, Any]:
    """An operation's JSON body, parsed (`parse_json_object`) and type-checked."""
    document = parse_json_object(body)
    check_body(operation, document)
    return document


def check_body(operation: str, body: dict[str, Any]) -> None:
    """Raise SerializationException at the first member whose JSON type is wrong."""
    shape = BODY_SHAPES.get(operation)
    if shape is None:
        return
    # InitiateJob may come wrapped as {"jobParameters": {...}} (spec 2.26 [R]).
    _check_members(unwrap(body) if operation == "InitiateJob" else body, shape, "")


def _check_members(value: Mapping[str, Any], shape: Struct, prefix: str) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:  # null is absent (spec 1.7)
            _check(item, member, prefix + name)


def _check(value: Any, shape: Shape, path: str) -> None:
    # Recursion follows the table, never the document: its depth is the table's.
    if isinstance(shape, Scalar):
        if not _is_scalar(value, shape):
            raise SerializationException(f"Member {path} must be {_TYPE_NAMES[shape]}.")
    elif isinstance(shape, Struct):
        if not isinstance(value, dict):
            raise SerializationException(f"Member {path} must be an object.")
        _check_members(value, shape, path + ".")
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise SerializationException(f"Member {path} must be a list.")
        for index, item in enumerate(value):
            _check(item, shape.member, f"{path}[{index}]")
    else:
        if not isinstance(value, dict):
            raise SerializationException(f"Member {path} must be a map.")
        for key, item in value.items():
            _check(item, shape.value, f"{path}.{key}")


def _is_scalar(value: Any, shape: Scalar) -> bool:
    if shape is Scalar.STRING:
        return isinstance(value, str)
    # JSON true/false are not numbers, though Python's bool is an int.
    return isinstance(value, int) and not isinstance(value, bool)
