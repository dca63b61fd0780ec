"""The request executed is the request that was signed: dot segments and empty segments.

botocore signs a path with its dot segments and empty segments removed
(`botocore.utils.normalize_url_path`) but sends it as written. A server that verifies
the normalised path and routes on the raw one runs whatever the raw path names: a
signature for `DELETE /-/vaults/v` (DeleteVault) sent as `DELETE /-/vaults/v/archives/..`
ran DeleteArchive with id "..". Every such pair is generated from the route table: each
route's path with its labels replaced by dot segments (plain and percent-encoded) and
empty segments, kept when it normalises to another route's signed path. The request is
signed by botocore for one path and sent on the other, as an attacker would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from botocore.utils import normalize_url_path, percent_encode

from openglacier.api.routes import ROUTES, Route
from openglacier.records import Caller
from openglacier.server import Runtime
from support.asserts import assert_error
from support.inprocess import ACCESS_KEY, ACCOUNT_ID, Api
from support.malformed import POLICY, World, js, open_world
from support.raw_asgi import RawAnswer, send_raw
from support.route_requests import body_and_headers, concrete
from support.server import ACCESS_KEY as LIVE_KEY
from support.server import SECRET_KEY as LIVE_SECRET
from support.server import LiveServer
from support.signing import Signer

# What a label may be replaced with: dot segments as botocore sends them (it leaves "."
# unescaped), percent-encoded as other clients or proxies may write them, and empty.
TRICKS = (".", "..", "%2E", "%2e", "%2E%2E", ".%2e", "")
PATH_ERROR = "Invalid request path"


@dataclass(frozen=True)
class Confusion:
    signed_route: Route
    signed_path: str  # what botocore signs for (after normalising it)
    sent_path: str  # what the attacker sends with that signature
    sent_as: str  # the operation a router on the raw path would run
    resolves_alike: bool  # botocore's own normalisation maps both to one path

    def __repr__(self) -> str:
        return f"{self.signed_route.operation} {self.signed_path} sent as {self.sent_path}"


def raw_route(
    method: str, path: str, query: dict[str, str]
) -> tuple[Route, tuple[str, ...]] | None:
    """What a router on the raw path runs: (route, decoded labels), or None."""
    segments = [unquote(s) for s in path.strip("/").split("/")]
    for route in ROUTES:
        if route.method != method or len(route.segments) != len(segments):
            continue
        if route.query and query.get(route.query[0]) != route.query[1]:
            continue
        pairs = list(zip(route.segments, segments, strict=True))
        if all(want.startswith("{") or want == got for want, got in pairs):
            return route, tuple(got for want, got in pairs if want.startswith("{"))
    return None


def variants(route: Route, ids: dict[str, list[str]]) -> Iterator[str]:
    """The route's path with any labels replaced by tricks, plus tricks appended."""
    base = concrete(route, ids).strip("/").split("/")
    labels = [i for i, want in enumerate(route.segments) if want.startswith("{")]
    for chosen in itertools.product([False, True], repeat=len(labels)):
        slots = [i for i, pick in zip(labels, chosen, strict=True) if pick]
        for tricks in itertools.product(TRICKS, repeat=len(slots)):
            segments = list(base)
            for slot, trick in zip(slots, tricks, strict=True):
                segments[slot] = trick
            yield "/" + "/".join(segments)
    for suffix in ("/.", "/..", "/%2E", "/x/..", "/x/%2E%2E", "//"):
        yield concrete(route, ids) + suffix
        yield "/-/" + suffix.strip("/") + concrete(route, ids)[2:]


def rfc_normalised(path: str) -> str:
    """RFC 3986 6.2.2: percent-encoded dots are dots; then dot segments removed."""
    return normalize_url_path(path.replace("%2E", ".").replace("%2e", "."))


def confusions(ids: dict[str, list[str]]) -> list[Confusion]:
    """Every variant that a raw-path router runs as one request while it normalises
    to another route's path: the request a client signed for that other path."""
    found = set()
    for route in ROUTES:
        query = dict([route.query]) if route.query else {}
        for path in variants(route, ids):
            ran = raw_route(route.method, path, query)
            if ran is None:
                continue
            for normalised in {normalize_url_path(path), rfc_normalised(path)}:
                signed = raw_route(route.method, normalised, query)
                if signed is None or signed == ran:
                    continue
                alike = normalised == normalize_url_path(path)
                found.add(Confusion(signed[0], normalised, path, ran[0].operation, alike))
    return sorted(found, key=repr)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_world(tmp_path_factory.mktemp("signed-path")) as opened:
        yield opened


def send(
    api: Api, method: str, signed_path: str, sent_path: str, body: bytes = b"", **kw: Any
) -> RawAnswer:
    """Signed by botocore for `signed_path`, sent on `sent_path` byte for byte."""
    signed = api.signer.sign(method, signed_path, body=body, **kw)
    headers = [("host", "testserver"), *signed.headers.items()]
    return send_raw(api.client.app, method, sent_path, headers, body)


def send_confused(world: World, case: Confusion) -> RawAnswer:
    route = case.signed_route
    body, headers = body_and_headers(route)
    query = f"?{route.query[0]}={route.query[1]}" if route.query else ""
    return send(
        world.api,
        route.method,
        case.signed_path + query,
        case.sent_path + query,
        body,
        headers=headers,
    )


def test_the_generated_pairs_cover_the_reported_attack(world: World) -> None:
    cases = confusions(world.ids)
    reported = [
        c
        for c in cases
        if c.signed_route.operation == "DeleteVault"
        and c.sent_path == "/-/vaults/v/archives/.."
        and c.sent_as == "DeleteArchive"
    ]
    assert reported, "the issue's own example must be among the generated pairs"
    # Every operation's path can be confused with another's, or with itself on other labels.
    assert {c.signed_route.operation for c in cases} >= {"DeleteVault", "DescribeVault"}
    assert len(cases) > 100


def test_a_signature_never_runs_another_path(world: World) -> None:
    """Signed for one route, sent as another that normalises to it: refused, nothing runs."""
    for case in confusions(world.ids):
        before = world.snapshot()
        resp = send_confused(world, case)
        if case.resolves_alike:
            # The signature matches (the signer normalised the same way): only the
            # path check stands between it and the other operation.
            assert resp.status_code == 400, (case, resp.text)
            assert_error(resp, 400, "InvalidParameterValueException")
            assert resp.json()["message"].startswith(PATH_ERROR), (case, resp.text)
        else:
            # Encoded dots are not resolved by the signer: the signature fails first.
            assert resp.status_code in (400, 403), (case, resp.text)
            code = resp.headers["x-amzn-errortype"]
            assert code in ("InvalidSignatureException", "InvalidParameterValueException"), case
        assert world.snapshot() == before, case


@pytest.mark.parametrize("label", [".", "..", "%2E", "%2e%2E"])
@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_dot_vault_names_are_refused_as_sent_by_botocore(
    world: World, label: str, method: str
) -> None:
    # botocore's serializer leaves "." unescaped, so a vault named "." or ".." goes on
    # the wire as a dot segment and is signed as the path without it.
    assert percent_encode(unquote(label)) == unquote(label)
    before = world.snapshot()
    path = f"/-/vaults/{label}"
    resp = send(world.api, method, path, path)
    assert_error(resp, 400, "InvalidParameterValueException")
    assert resp.json()["message"].startswith(f"{PATH_ERROR} /-/vaults/{label}:")
    assert world.snapshot() == before


@pytest.mark.parametrize("path", ["//-/vaults", "/-//vaults/v", "/-/vaults/v//", "/-/./vaults"])
def test_empty_and_dot_segments_anywhere_are_refused(world: World, path: str) -> None:
    assert_error(send(world.api, "GET", path, path), 400, "InvalidParameterValueException")


def test_clean_paths_still_route(api: Api) -> None:
    assert api("PUT", "/-/vaults/v.1..x").status_code == 201  # dots inside a name are fine
    assert api("GET", "/-/vaults/v.1..x/jobs/").status_code == 200  # trailing "/" (spec 1.2)
    assert api("GET", f"/{ACCOUNT_ID}/vaults/v.1..x").json()["VaultName"] == "v.1..x"


def test_a_legacy_dot_vault_cannot_be_reached_with_another_signature(
    runtime: Runtime, api: Api
) -> None:
    """Data from before the check: a vault named "." with an access policy. A signature
    for DeleteVault("access-policy"), sent as `/-/vaults/./access-policy`, would delete
    the policy of vault "." -- a request nobody signed."""
    caller = Caller(ACCESS_KEY, ACCOUNT_ID, "us-east-1")
    services = runtime.services
    asyncio.run(services.vaults.create(caller, "."))
    asyncio.run(services.policies.set_access_policy(caller, ".", {"Policy": POLICY}))
    resp = send(api, "DELETE", "/-/vaults/access-policy", "/-/vaults/./access-policy")
    assert_error(resp, 400, "InvalidParameterValueException")
    assert asyncio.run(services.policies.get_access_policy(caller, ".")) == POLICY


def test_repeated_query_parameters_cannot_be_reordered(api: Api) -> None:
    """The canonical query string sorts parameters: `operation=remove&operation=add`
    and its reverse sign alike, while the router reads the last value."""
    assert api("PUT", "/-/vaults/v").status_code == 201
    tags = {"Tags": {"team": "a"}}
    assert api("POST", "/-/vaults/v/tags?operation=add", body=js(tags)).status_code == 204
    body = js({**tags, "TagKeys": ["team"]})
    signed_for = "/-/vaults/v/tags?operation=remove&operation=add"  # AddTagsToVault
    resp = send(api, "POST", signed_for, "/-/vaults/v/tags?operation=add&operation=remove", body)
    assert_error(resp, 400, "InvalidParameterValueException")
    assert "more than once" in resp.json()["message"]
    assert api("GET", "/-/vaults/v/tags").json() == tags
    # Sent as signed, it is refused the same way: no SDK repeats a parameter.
    assert send(api, "POST", signed_for, signed_for, body).status_code == 400


def test_over_a_socket_the_reported_request_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The issue's request on a real socket: the HTTP layer hands the target over as
    sent (no dot-segment removal), so the router's check is what refuses it."""
    live = LiveServer(tmp_path_factory.mktemp("socket") / "data").start()
    try:
        signer = Signer(live.endpoint, LIVE_KEY, LIVE_SECRET)
        with httpx.Client() as http:
            assert http.send(signer.sign("PUT", "/-/vaults/v").httpx()).status_code == 201
            signed = signer.sign("DELETE", "/-/vaults/v")  # DeleteVault
            head = "".join(f"{k}: {v}\r\n" for k, v in signed.headers.items())
            request = (
                "DELETE /-/vaults/v/archives/.. HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{live.port}\r\n{head}Connection: close\r\n\r\n"
            )
            with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
                sock.sendall(request.encode("latin-1"))
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line.split()[1] == b"400", answer
            error = json.loads(rest.partition(b"\r\n\r\n")[2])
            assert error["code"] == "InvalidParameterValueException"
            assert error["message"].startswith(f"{PATH_ERROR} /-/vaults/v/archives/..:")
            assert http.send(signer.sign("GET", "/-/vaults/v").httpx()).status_code == 200
    finally:
        live.stop()
