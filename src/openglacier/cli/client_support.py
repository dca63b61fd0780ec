"""What the client commands share besides the endpoint options: `--json` and
`--catalogue`, the exit-code table for their help, and turning every failure
into one line on stderr with its exit code (transfer/errors.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from botocore.exceptions import BotoCoreError, ClientError

from openglacier.transfer import errors
from openglacier.transfer.catalogue import Catalogue, CatalogueError
from openglacier.transfer.endpoint import Endpoint, EndpointError, glacier_client
from openglacier.transfer.vaults import check_vault_name

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = (
    "Exit codes: 0 ok; 1 some files or archives failed (each has its line on stderr);"
    " 2 usage; 3 not found (vault, archive, upload, catalogue entry); 4 credentials"
    " missing or rejected, or access denied; 5 endpoint unreachable; 6 refused by the"
    " endpoint (its error code is named); 7 local problem (catalogue, file); 8 job failed;"
    " 9 checksum mismatch (nothing kept); 130 interrupted."
)


def json_option(func: F) -> F:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        envvar="OPENGLACIER_JSON",
        help="Print one JSON object per line (per vault, archive or file) instead of a table."
        " Env: OPENGLACIER_JSON.",
    )(func)


def catalogue_option(func: F) -> F:
    return click.option(
        "--catalogue",
        "catalogue_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="OPENGLACIER_CATALOGUE",
        help="The local catalogue of uploaded files (SQLite)"
        " [$XDG_DATA_HOME/openglacier/catalogue.db, else ~/.local/share/openglacier/catalogue.db]."
        " Env: OPENGLACIER_CATALOGUE.",
    )(func)


def vault_option(func: F) -> F:
    return click.option(
        "--vault",
        required=True,
        envvar="OPENGLACIER_VAULT",
        callback=vault_name,
        help="Vault name. Env: OPENGLACIER_VAULT.",
    )(func)


# The first polls come sooner (transfer/jobs.py wait_for_job doubles from 0.25 s).
poll_seconds_option = click.option(
    "--poll-seconds",
    type=click.FloatRange(0.01),
    default=60.0,
    show_default=True,
    envvar="OPENGLACIER_POLL_SECONDS",
    help="Longest wait between two DescribeJob calls while the job runs (the first"
    " polls come sooner). Env: OPENGLACIER_POLL_SECONDS.",
)


def vault_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """click callback: a vault name Glacier accepts (usage error otherwise)."""
    try:
        return check_vault_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def client_errors(what: str = "") -> Iterator[None]:
    """Every failure as `error: ONE LINE` on stderr and its exit code; Ctrl-C as
    exit 130. `what` names the object of a "not found" ("vault NAME")."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again to resume", err=True)
        sys.exit(errors.INTERRUPTED)
    except (EndpointError, CatalogueError) as exc:
        code = errors.LOCAL if isinstance(exc, CatalogueError) else errors.USAGE
        fail(str(exc), code)
    except (errors.TransferError, ClientError, BotoCoreError, OSError) as exc:
        error = errors.classify(exc, what)
        fail(str(error), error.code)


def connect(endpoint: Endpoint, *, parallel: int = 4) -> Any:
    """A boto3 client with a connection per request thread (and a few spare)."""
    with client_errors():
        return glacier_client(endpoint, max_pool_connections=parallel + 4)


def open_catalogue(path: Path | None) -> Catalogue:
    with client_errors():
        return Catalogue.open(path)
