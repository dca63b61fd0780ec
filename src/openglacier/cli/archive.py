"""`openglacier archive ...`: the transfer client's archive commands (transfer/)."""

from __future__ import annotations

import click


@click.group()
def archive() -> None:
    """archive commands against any Glacier endpoint (OpenGlacier or AWS)."""
