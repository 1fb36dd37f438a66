"""``rounds-hub retention``: remove what is past its time (hub/retention.py),
by hand or from the daily systemd timer (firmware-config/hub/)."""

from datetime import datetime, timezone

import click

from hub import retention
from hub.cli.support import hub_config, open_hub_db


@click.group("retention")
def retention_group():
    """Data kept only as long as allowed (periods in hub.json's "retention").

    Example:

    \b
        rounds-hub --config /etc/rounds/site/hub.json retention show
    """


@retention_group.command("show")
@click.pass_context
def show(ctx):
    """Print each kind of data, how long it is kept and the cut-off today.

    Example:

    \b
        rounds-hub --config /etc/rounds/site/hub.json retention show
    """
    policy = hub_config(ctx)["retention"]
    cut = retention.cutoffs(policy, datetime.now(timezone.utc))
    for kind in retention.KINDS:
        days = policy[kind.key]
        kept = "kept for good" if days is None else f"{days} days (before {cut[kind.key]})"
        click.echo(f"{kind.key:30} {kept}")


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
@click.option("--batch", default=500, show_default=True,
              help="Rows per write transaction (short, so ingest never waits long).")
@click.pass_context
def run(ctx, dry_run, batch):
    """Remove everything past its time and log what went to the audit log.

    Settles ended events' attendance before pruning the presence it came from.
    Safe to run again at any time: what is gone is not counted twice.

    Example:

    \b
        rounds-hub --config /etc/rounds/site/hub.json retention run --dry-run
    """
    policy = hub_config(ctx)["retention"]
    db = open_hub_db(ctx, must_exist=True)
    try:
        done = retention.run(db, policy, dry_run=dry_run, batch=batch)
    finally:
        db.close()
    verb = "would remove" if dry_run else "removed"
    for key, count in done.items():
        click.echo(f"{key:30} {verb} {count}")


COMMANDS = (retention_group,)
