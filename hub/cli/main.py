"""``rounds-hub``: the hub's processes and tools."""

import sys

import click

from runtime.daemon import exec_gunicorn, setup_logging, stop_on_signals
from runtime.settings import MqttSettings

from hub.cli import export, retention, roster
from hub.cli.support import hub_config
from hub.ingest.subscriber import Ingest, IngestFatal

DEFAULT_CONFIG = "/etc/rounds/hub.json"


def _load(ctx) -> dict:
    return hub_config(ctx, ("site", "db", "mqtt"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="ROUNDS_HUB_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, help="The hub's JSON config.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def main(ctx, config_path, verbose):
    """The Rounds hub: ingest from nodes, dashboard and API.

    Example:

        rounds-hub --config /etc/rounds/hub.json ingest
    """
    ctx.obj = {"config_path": config_path}
    setup_logging(verbose)


@main.command()
@click.pass_context
def ingest(ctx):
    """Take every node's records from the broker into the hub database.

    Acknowledges a batch only after it is committed; sends the roster and
    each node's schedule down (retained). Exits 2 when the broker refuses
    the hub's credentials.

    Example:

        rounds-hub --config /etc/rounds/hub.json ingest
    """
    config = _load(ctx)
    worker = Ingest(site=config["site"], db_path=config["db"],
                    mqtt=MqttSettings.from_dict(config["mqtt"]),
                    photos_dir=config.get("photos_dir"),
                    timezone=config.get("timezone", "Asia/Shanghai"),
                    review_days=config["review"]["days_per_level"])
    stop_on_signals(worker.stop)
    try:
        worker.run()
    except IngestFatal as exc:
        click.echo(f"rounds-hub ingest: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option("--bind", default=None, help="host:port (default: the config's web.bind "
              "or 127.0.0.1:8000).")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.pass_context
def web(ctx, bind, workers):
    """Serve the dashboard and the JSON API (/api/v1) with gunicorn.

    Example:

        rounds-hub --config /etc/rounds/hub.json web --bind 127.0.0.1:8000
    """
    config = _load(ctx)
    bind = bind or config.get("web", {}).get("bind", "127.0.0.1:8000")
    exec_gunicorn("hub.web:create_app()", bind, workers, "ROUNDS_HUB_CONFIG", ctx.obj["config_path"])


for command in (*roster.COMMANDS, *export.COMMANDS, *retention.COMMANDS):
    main.add_command(command)
