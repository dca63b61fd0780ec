"""Per-request state handed to every handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from openglacier.api.json_shapes import parse_json_body
from openglacier.api.routes import Route
from openglacier.domain.services import Services
from openglacier.domain.vaults import vault_not_found
from openglacier.records import Caller, Vault


@dataclass
class RequestContext:
    request: Request
    request_id: str
    route: Route
    params: dict[str, str]
    caller: Caller
    services: Services
    body: bytes = b""  # whole body of non-streaming operations
    payload_sha256: str = ""  # declared x-amz-content-sha256 (streaming operations)
    # The owner's vault as the policy check read it (None: no such vault, or an
    # account-level operation). An answer that is this very row may use it, and
    # so may read-only operations on the vault's jobs (JobService._vault), the
    # most polled; writes read the vault again in their own transaction.
    checked_vault: Vault | None = None
    _json: dict[str, Any] | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def json(self) -> dict[str, Any]:
        """The body, parsed and type-checked. Spec 1.8 [R] order: a missing vault
        (404) is reported before anything wrong with the body (400)."""
        if self._json is None:
            if "vaultName" in self.params and self.checked_vault is None:
                raise vault_not_found(self.services.deps, self.caller, self.vault_name)
            self._json = parse_json_body(self.route.operation, self.body)
        return self._json

    def stream(self) -> AsyncIterator[bytes]:
        return self.request.stream()

    def content_length(self) -> int | None:
        value = self.header("content-length")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def vault_name(self) -> str:
        return self.params["vaultName"]

    @property
    def account_id(self) -> str:
        return self.caller.account_id

    def vault_arn_of(self, vault: Vault) -> str:
        """The ARN as stored (the vault's own name and account)."""
        return self.services.deps.vault_arn(vault.region, vault.account_id, vault.name)

    def vault_arn(self) -> str:
        return self.services.deps.vault_arn(
            self.caller.region, self.caller.account_id, self.vault_name
        )
