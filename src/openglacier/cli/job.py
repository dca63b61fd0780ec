"""`openglacier job ...`: the transfer client's job commands (transfer/)."""

from __future__ import annotations

import click


@click.group()
def job() -> None:
    """job commands against any Glacier endpoint (OpenGlacier or AWS)."""
