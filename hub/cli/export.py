"""``rounds-hub export``: a person's or an event's record as XLSX or CSV
(the same files as the dashboard's export buttons, ``hub.attendance.exports``).

Headers are English; times are wall-clock in the config's ``timezone``
(default Asia/Shanghai). Each export is written to the audit log as done by
``cli:<os user>``, as the dashboard's are.
"""

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from hub import audit
from hub.attendance import exports
from hub.attendance.attendance import day_bounds
from hub.cli.support import cli_actor, hub_config, open_hub_db
from hub.db import write_transaction

DEFAULT_TIMEZONE = "Asia/Shanghai"


def _open(ctx):
    """The hub database named by the config (relative to the config file, as
    the web app reads it) and the hospital's time zone."""
    config = hub_config(ctx)
    try:
        tz = ZoneInfo(config.get("timezone", DEFAULT_TIMEZONE))
    except (ZoneInfoNotFoundError, ValueError):
        raise click.ClickException(f"unknown timezone in {ctx.obj['config_path']}: "
                                   f"{config.get('timezone')!r}") from None
    return open_hub_db(ctx, must_exist=True), tz


def _write(output: str, data: bytes) -> None:
    if output == "-":
        click.get_binary_stream("stdout").write(data)
        return
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None


def _audit(db, action: str, target: str, **detail) -> None:
    with write_transaction(db):
        audit.record(db, cli_actor(), action, target, detail)


def _format_option(command):
    return click.option("--format", "fmt", type=click.Choice(exports.FORMATS),
                        default="xlsx", show_default=True, help="File format.")(command)


def _output_option(command):
    return click.option("-o", "--output", required=True, metavar="FILE",
                        help="Where to write the file ('-' for standard output).")(command)


@click.group("export")
def export():
    """Export a person's or an event's record as XLSX or CSV.

    Example:

        rounds-hub export person S001 --format xlsx -o S001.xlsx
    """


@export.command("person")
@click.argument("staff_id")
@_format_option
@_output_option
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First local day of the period (YYYY-MM-DD).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last local day of the period, included (YYYY-MM-DD).")
@click.pass_context
def person(ctx, staff_id, fmt, output, first, last):
    """A person's attendance, volunteer hours and reports.

    XLSX has a worksheet per part (summary, attendance, hours, reports); CSV
    has the same parts one after another, each under its title row.

    Example:

        rounds-hub export person S001 --format csv --from 2025-03-01 --to 2025-03-31 -o S001.csv
    """
    db, tz = _open(ctx)
    try:
        since = day_bounds(date(first.year, first.month, first.day), tz)[0] if first else None
        until = day_bounds(date(last.year, last.month, last.day), tz)[1] if last else None
        if since and until and until <= since:
            raise click.BadParameter("--to must not be before --from")
        try:
            record = exports.person_record(db, staff_id, since, until)
        except exports.NotFound as exc:
            raise click.ClickException(str(exc)) from None
        data = exports.write(exports.person_sheets(record, tz), fmt)
        _write(output, data)
        _audit(db, "export.person", f"staff:{staff_id}", format=fmt, since=since, until=until)
    finally:
        db.close()
    if output != "-":
        click.echo(f"wrote {output}: {len(record['attendance'])} events, "
                   f"{len(record['hours'])} hour entries, {len(record['reports'])} reports",
                   err=True)


@export.command("event")
@click.argument("event_id")
@_format_option
@_output_option
@click.pass_context
def event(ctx, event_id, fmt, output):
    """Everyone's attendance at one event, with check-in and check-out times.

    CSV is the attendance table; XLSX adds a sheet about the event.

    Example:

        rounds-hub export event lecture-2025-03-10 --format xlsx -o lecture.xlsx
    """
    db, tz = _open(ctx)
    try:
        try:
            report = exports.event_rows(db, event_id)
        except exports.NotFound as exc:
            raise click.ClickException(str(exc)) from None
        sheets = exports.event_sheets(report, tz)
        data = exports.write(sheets[:1] if fmt == "csv" else sheets, fmt)
        _write(output, data)
        _audit(db, "export.event", f"event:{event_id}", format=fmt)
    finally:
        db.close()
    if output != "-":
        click.echo(f"wrote {output}: {len(report['attendance'])} people", err=True)


COMMANDS: list[click.Command] = [export]
