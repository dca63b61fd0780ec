"""`openglacier vault ...`: the transfer client's vault commands (transfer/)."""

from __future__ import annotations

import click


@click.group()
def vault() -> None:
    """vault commands against any Glacier endpoint (OpenGlacier or AWS)."""
