"""``rounds-hub db``: the hub's database, and moving it to PostgreSQL
(hub/sql/transfer.py; docs/scaling.md says when)."""

import click
import psycopg

from hub.cli.support import hub_db_path
from hub.sql import is_dsn
from hub.sql import transfer


@click.group("db")
def db_group():
    """The hub's database: copying it to PostgreSQL.

    Example:

    \b
        rounds-hub --config /etc/rounds/site/hub.json db migrate-to \\
            postgresql://rounds@db.example.org/rounds
    """


@db_group.command("migrate-to")
@click.argument("dsn")
@click.option("--batch", type=click.IntRange(100, 1_000_000), default=5000, show_default=True,
              help="Rows read from SQLite at a time.")
@click.pass_context
def migrate_to(ctx, dsn, batch):
    """Copy the hub's SQLite database into the empty PostgreSQL database DSN,
    check every table's row count and checksum on both sides, and say what
    to switch. Stop `rounds-hub ingest` and `web` first: rows written during
    the copy are not in it. Nothing is committed unless every table copies.

    Example:

    \b
        systemctl stop rounds-hub-ingest rounds-hub-web
        rounds-hub --config /etc/rounds/site/hub.json db migrate-to \\
            postgresql://rounds@db.example.org/rounds
    """
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("give a postgresql://user@host/database DSN", param_hint="DSN")
    path = hub_db_path(ctx, must_exist=True)
    if is_dsn(path):
        raise click.ClickException("this hub already runs on PostgreSQL (hub.json's \"db\" is "
                                   "a DSN); migrate-to copies a SQLite hub database there")
    try:
        copies = transfer.migrate_to(path, dsn, batch=batch, progress=click.echo)
    except transfer.TransferError as exc:
        raise click.ClickException(str(exc)) from None
    except psycopg.Error as exc:
        raise click.ClickException(f"PostgreSQL refused the copy (nothing was committed): "
                                   f"{exc}".strip()) from None
    rows = sum(copy.rows for copy in copies)
    click.echo(f"Copied and verified {len(copies)} tables, {rows} rows, from {path}.")
    click.echo(f"To switch, in hub.json set \"db\": \"{dsn}\", and name \"secret_key\" (the "
               "dashboard's session key, kept beside the SQLite file until now) and "
               "\"photos_dir\" (where photos are, today beside the file); then start the "
               "hub's services again. The SQLite file stays as it was: keep it until the "
               "hub runs well on PostgreSQL (docs/scaling.md).")


COMMANDS = (db_group,)
