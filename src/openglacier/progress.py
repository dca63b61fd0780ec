"""The one progress bar for bytes moved (upload, download, migrate, scrub,
blob moves): a label, a bar, bytes done of the total, rate and time left.

Only rich; importable by the transfer client and the server's commands alike.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def byte_progress(
    console: Console,
    label: str = "[bold]{task.description}",
    *,
    markup: bool = True,
    **options: Any,
) -> Progress:
    """A Progress with the byte columns; `options` go to rich's Progress
    (`transient`, `disable`, `redirect_stdout`, ...). `markup=False` for labels
    that carry file names, which may contain rich markup characters."""
    return Progress(
        TextColumn(label, markup=markup),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        **options,
    )
