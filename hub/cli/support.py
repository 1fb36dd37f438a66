"""What every ``rounds-hub`` command shares: its config, its database, and
the name it writes in the audit log."""

import getpass
from pathlib import Path

import click

from runtime.settings import ConfigError

from hub.config import load_hub_config
from hub.db import open_db
from hub.sql import is_dsn


def hub_config(ctx, required=("site", "db")) -> dict:
    """The config named by ``--config`` (paths resolved), or a CLI error."""
    try:
        return load_hub_config(ctx.obj["config_path"], required)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def hub_db_path(ctx, must_exist: bool = False) -> str:
    """The config's hub database: its file (with ``must_exist``, a CLI error
    when it is missing) or its PostgreSQL DSN."""
    path = hub_config(ctx)["db"]
    if must_exist and not is_dsn(path) and not Path(path).exists():
        raise click.ClickException(f"hub database not found: {path}")
    return path


def open_hub_db(ctx, must_exist: bool = False):
    """The hub database of the config; with ``must_exist``, a CLI error
    rather than a new empty database when the file is missing."""
    return open_db(hub_db_path(ctx, must_exist))


def cli_actor() -> str:
    """Who acts from the shell, as the audit log names them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in this environment
        return "cli:unknown"
