"""`openglacier job ...`: the transfer client's job commands (transfer/)."""

from __future__ import annotations

import click

from openglacier.cli.retrieve import job_get, job_ls


@click.group()
def job() -> None:
    """job commands against any Glacier endpoint (OpenGlacier or AWS)."""


job.add_command(job_get)
job.add_command(job_ls)
