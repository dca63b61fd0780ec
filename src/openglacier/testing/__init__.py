"""Testing your own Glacier code against a real OpenGlacier (docs/testing-your-code.md).

`GlacierTestServer` (openglacier.testing.server) starts one; the pytest plugin
(openglacier.testing.pytest_plugin, registered as a pytest11 entry point) gives
the fixtures glacier_server, glacier_client and their _session variants.
"""

from typing import Any

__all__ = ["AdminError", "GlacierTestServer"]


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): the pytest plugin imports this package in every test run of
    # an environment with openglacier installed, fixtures used or not.
    if name in __all__:
        from openglacier.testing import server  # noqa: PLC0415

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
