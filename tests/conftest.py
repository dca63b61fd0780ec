"""Suite-wide fixtures."""

from __future__ import annotations

import os

import pytest


def require_service(reason: str) -> None:
    """Skip a test whose external service is missing, except in CI where it must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI=true: this suite must run, not skip)")
    pytest.skip(reason)
