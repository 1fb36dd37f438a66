"""``rounds-hub group``: the group hub, one PostgreSQL database over every
campus of a hospital group (hub/group; README "Hospital group")."""

import sys

import click

from runtime.daemon import stop_on_signals
from runtime.settings import ConfigError, MqttSettings, load_json

from hub.group.ingest import GroupIngest
from hub.ingest.subscriber import IngestFatal
from hub.ingest.workers import REFUSED
from hub.sql import is_dsn


@click.group("group")
def group_cli():
    """The group hub: every campus's data in one PostgreSQL database.

    --config names the group hub's config: the group-hub.json that
    `rounds-provision group init` writes (the group broker's user, the
    campuses), with "db" (a postgresql:// DSN) and "photos_dir" added.

    Example:

        rounds-hub --config /etc/rounds/group/group-hub.json group ingest
    """


@group_cli.command("ingest")
@click.pass_context
def ingest(ctx):
    """Take every campus's uplinks from the group broker into the group
    database, each campus in its own schema (made on first start).

    Acknowledges a message to the group broker only once it is committed;
    sends nothing down (each campus hub does). Exits 2 when the group broker
    refuses the group hub's credentials.

    Example:

        rounds-hub --config /etc/rounds/group/group-hub.json group ingest
    """
    try:
        config = load_json(ctx.obj["config_path"], ("db", "mqtt", "campuses", "photos_dir"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not is_dsn(config["db"]):
        raise click.ClickException("the group hub's \"db\" must be a postgresql:// DSN")
    worker = GroupIngest(group_dsn=config["db"], campuses=config["campuses"],
                         mqtt=MqttSettings.from_dict(config["mqtt"]),
                         photos_dir=config["photos_dir"])
    stop_on_signals(worker.stop)
    try:
        worker.run()
    except IngestFatal as exc:
        print(f"rounds-hub group ingest: {exc}", file=sys.stderr)
        sys.exit(REFUSED)


COMMANDS = (group_cli,)
