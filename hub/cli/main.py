"""``rounds-hub``: the hub's processes and tools."""

import sys

import click

from runtime.daemon import exec_gunicorn, setup_logging
from runtime.settings import ConfigError

from hub.cli import db, export, group, retention, roster
from hub.cli.support import hub_config
from hub.ingest import workers as ingest_workers

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
    ctx.obj = {"config_path": config_path, "verbose": verbose}
    setup_logging(verbose)


@main.command()
@click.option("--workers", type=click.IntRange(1, 32), default=1, show_default=True,
              help="Ingest processes sharing the nodes' uplinks (an MQTT shared "
              "subscription). Each one after the first needs its MQTT user in the config's "
              "mqtt.workers (rounds-provision site init --ingest-workers N).")
@click.option("--worker", "index", type=int, default=None, metavar="INDEX",
              help="Run only worker INDEX of --workers, in the foreground (what the "
              "supervisor starts; or one service unit per worker).")
@click.pass_context
def ingest(ctx, workers, index):
    """Take every node's records from the broker into the hub database.

    Acknowledges a batch only after it is committed; sends the roster and
    each node's schedule down (retained). Exits 2 when the broker refuses
    the hub's credentials. With --workers N, supervises N worker processes
    (hub/ingest/workers.py): passes SIGTERM/SIGINT on, starts a worker that
    died again, and exits 2 when the broker refuses any of them.

    Example:

        rounds-hub --config /etc/rounds/hub.json ingest --workers 3
    """
    config = _load(ctx)
    if index is not None and not 1 <= index <= workers:
        raise click.BadParameter(f"expected 1-{workers} (--workers)", param_hint="--worker")
    try:
        code = ingest_workers.run(config, ctx.obj["config_path"], workers, index,
                                  verbose=ctx.obj["verbose"])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


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


for command in (*roster.COMMANDS, *export.COMMANDS, *retention.COMMANDS, *db.COMMANDS,
                *group.COMMANDS):
    main.add_command(command)
