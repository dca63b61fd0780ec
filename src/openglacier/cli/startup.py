"""Start-up failures as one line saying what is wrong and what to do.

A new operator's mistakes (a taken port, an unreachable or missing database, an
unwritable data dir) end in click's `Error: ...` and exit status 1, never a
traceback; bad settings are usage errors (exit status 2) raised before anything
touches the disk (config.validate).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import uvicorn
from sqlalchemy.engine import make_url

from openglacier.config import ConfigError, Settings, mask_secrets
from openglacier.errors import StorageError
from openglacier.keyring import KeyringError
from openglacier.storage.blobs.opening import BlobStoreOpenError


class SettingsError(click.ClickException):
    """A bad setting: exit status 2 like click's usage errors, but one line (no
    usage text: the message names the setting and what to use instead)."""

    exit_code = 2


@contextmanager
def one_line_errors(settings: Settings) -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    except KeyringError as exc:  # one line naming the key file or key id and the fix
        raise click.ClickException(str(exc)) from None
    except BlobStoreOpenError as exc:  # already one line naming the store and the fix
        raise click.ClickException(mask_secrets(str(exc))) from None
    except StorageError as exc:
        raise click.ClickException(_metadata_problem(settings, exc)) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise click.ClickException(
            f"{where}{exc.strerror or exc}; check --data-dir, --blob-url and their permissions"
        ) from None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _metadata_problem(settings: Settings, exc: StorageError) -> str:
    """The driver's own words (e.g. psycopg's 'database "x" does not exist'): their
    first line, which says what failed; ours say what to do."""
    lines = str(_root_cause(exc)).strip().splitlines() or [str(exc)]
    words = " ".join(lines[0].split())
    url = settings.resolved_metadata_url
    advice = "check that the database server is running and --metadata-url is right"
    if "does not exist" in words and "database" in words:
        name = make_url(url).database or "NAME"
        advice = f"create the database (createdb {name}) or fix --metadata-url"
    return mask_secrets(f"cannot open the metadata store {url}: {words}; {advice}")


def listen_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else happens, so a taken port
    fails before any credentials are generated or printed.

    SO_REUSEADDR only (as uvicorn binds): a restart is not refused over the last
    run's TIME_WAIT connections, yet any listener on the port, including the
    SO_REUSEPORT sockets of a running `serve --processes N`, makes this fail.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise click.ClickException(port_problem(host, port, exc)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise click.ClickException(port_problem(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def port_problem(host: str, port: int, exc: OSError) -> str:
    return (
        f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop the program "
        "using it or choose another --port / --host"
    )


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server, calling `on_started` once it accepts connections (the app's
    start-up done), so the banner is printed only for a server that is serving."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self.on_started()
