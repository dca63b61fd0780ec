"""The route table against botocore's Glacier model: no operation silently missing."""

from __future__ import annotations

import botocore.session
import pytest

from openglacier.api.routes import ROUTES, Body, match
from openglacier.errors import (
    InvalidParameterValueException,
    MethodNotAllowed,
    ResourceNotFoundException,
)


def model_operations() -> dict[str, tuple[str, str]]:
    model = botocore.session.get_session().get_service_model("glacier")
    return {
        name: (
            model.operation_model(name).http["method"],
            model.operation_model(name).http["requestUri"],
        )
        for name in model.operation_names
    }


def test_every_model_operation_is_routed_with_its_method_and_uri() -> None:
    ours = {r.operation: (r.method, r.request_uri) for r in ROUTES}
    assert ours == model_operations()
    assert len(ROUTES) == 33


def test_success_statuses_match_the_model_where_it_states_one() -> None:
    model = botocore.session.get_session().get_service_model("glacier")
    for route in ROUTES:
        declared = model.operation_model(route.operation).http.get("responseCode")
        if declared is not None:
            assert route.success == declared, route.operation


def test_streaming_operations_are_exactly_the_two_uploads() -> None:
    assert {r.operation for r in ROUTES if r.body is Body.STREAM} == {
        "UploadArchive",
        "UploadMultipartPart",
    }


@pytest.mark.parametrize(
    ("method", "path", "query", "operation", "params"),
    [
        ("GET", "/-/vaults", {}, "ListVaults", {"accountId": "-"}),
        ("PUT", "/-/vaults/v1", {}, "CreateVault", {"accountId": "-", "vaultName": "v1"}),
        ("POST", "/-/vaults/v/tags", {"operation": "add"}, "AddTagsToVault", None),
        ("POST", "/-/vaults/v/tags", {"operation": "remove"}, "RemoveTagsFromVault", None),
        ("GET", "/-/vaults/v/jobs/", {}, "ListJobs", None),
        ("GET", "/1/vaults/v/jobs/J/output", {}, "GetJobOutput", None),
        (
            "DELETE",
            "/-/vaults/a%2Fb/archives/X",
            {},
            "DeleteArchive",
            {"accountId": "-", "vaultName": "a/b", "archiveId": "X"},
        ),
    ],
)
def test_match(
    method: str, path: str, query: dict[str, str], operation: str, params: dict[str, str] | None
) -> None:
    found = match(method, path, query)
    assert found.route.operation == operation
    if params is not None:
        assert found.params == params


def test_encoded_slash_stays_inside_its_label() -> None:
    # "/-/vaults/x%2Farchives" is DescribeVault of vault "x/archives", not UploadArchive.
    found = match("GET", "/-/vaults/x%2Farchives", {})
    assert found.route.operation == "DescribeVault"
    assert found.params["vaultName"] == "x/archives"


def test_unknown_path_is_resource_not_found() -> None:
    with pytest.raises(ResourceNotFoundException):
        match("GET", "/-/nothing/here", {})


def test_wrong_method_is_405() -> None:
    with pytest.raises(MethodNotAllowed) as info:
        match("PATCH", "/-/vaults/v", {})
    assert info.value.http_status == 405


def test_tags_post_without_operation_is_invalid_parameter() -> None:
    with pytest.raises(InvalidParameterValueException):
        match("POST", "/-/vaults/v/tags", {})
    with pytest.raises(InvalidParameterValueException):
        match("POST", "/-/vaults/v/tags", {"operation": "list"})


@pytest.mark.parametrize(
    "path",
    [
        "/-/vaults/v/archives/..",  # signed as /-/vaults/v (DeleteVault)
        "/-/vaults/./access-policy",  # signed as /-/vaults/access-policy (vault "access-policy")
        "/-/vaults/v/.",
        "/-/vaults/%2E",  # a label that decodes to a dot segment
        "/-/vaults/.%2e",
        "/-/vaults//tags",  # signed as /-/vaults/tags
        "//-/vaults",
        "/-/vaults/v/jobs//",
    ],
)
def test_paths_not_signed_as_themselves_are_refused(path: str) -> None:
    for method in ("GET", "PUT", "POST", "DELETE"):
        with pytest.raises(InvalidParameterValueException, match="Invalid request path"):
            match(method, path, {"operation": "add"})


def test_dots_inside_labels_and_a_trailing_slash_route() -> None:
    assert match("GET", "/-/vaults/.v./jobs/", {}).params["vaultName"] == ".v."
    assert match("GET", "/-/vaults/...", {}).params["vaultName"] == "..."


def test_raw_utf8_and_its_percent_encoding_are_one_label() -> None:
    # Both are signed as %C3%A9 (ASGI hands raw bytes over as latin-1 text).
    raw = match("GET", "/-/vaults/caf\u00c3\u00a9", {}).params["vaultName"]
    assert raw == match("GET", "/-/vaults/caf%C3%A9", {}).params["vaultName"] == "café"
