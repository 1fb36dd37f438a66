"""``rounds-edge``: the node agent's processes."""

import sys

import click

from runtime.daemon import exec_gunicorn, load_config, setup_logging, stop_on_signals
from runtime.settings import MqttSettings

DEFAULT_CONFIG = "/etc/rounds/node.json"


def _load(ctx) -> dict:
    return load_config(ctx.obj["config_path"], ("site", "node", "db", "mqtt"))


def _retention(config: dict) -> dict:
    """The config's optional "retention" section, checked (edge.retention)."""
    from .retention import settings

    try:
        return settings(config.get("retention"))
    except ValueError as exc:
        raise click.ClickException(f"node config: {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="ROUNDS_EDGE_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, help="The node's JSON config (written by provisioning).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def main(ctx, config_path, verbose):
    """The Rounds node agent: captive portal, presence and sync with the hub.

    Example:

        rounds-edge --config /etc/rounds/node.json sync
    """
    ctx.obj = {"config_path": config_path}
    setup_logging(verbose)


@main.command()
@click.pass_context
def sync(ctx):
    """Send queued records to the hub over MQTT; keep the roster and schedule.

    Runs until stopped (SIGTERM/Ctrl-C). Starts even when the broker is down
    and reconnects with backoff. Exits 2 when the broker refuses the node's
    credentials.

    Example:

        rounds-edge --config /etc/rounds/node.json sync
    """
    from .sync import NodeSync, SyncFatal

    config = _load(ctx)
    link = NodeSync(site=config["site"], node=config["node"], db_path=config["db"],
                    mqtt=MqttSettings.from_dict(config["mqtt"]), retention=_retention(config),
                    **config.get("sync", {}))
    stop = stop_on_signals(lambda: link.wake.set())
    try:
        link.run(stop)
    except SyncFatal as exc:
        click.echo(f"rounds-edge sync: {exc}. Check the node's MQTT user and password "
                   "(or ask facilities to re-provision it).", err=True)
        sys.exit(2)


@main.command()
@click.option("--dry-run", is_flag=True, help="Count what is past its time; delete nothing.")
@click.pass_context
def prune(ctx, dry_run):
    """Delete what the node keeps past its time, once, and print the counts.

    The sync process does this at start and about once an hour. Periods in
    days come from the node config's section "retention" (outbox_days 90,
    spool_days 30, local_reports_days 90, local_checkins_days 30,
    pin_failures_days 1); released phones whose time is up go at once.
    Prints one line per kind: "<kind> <count>". Refuses (exit 1) while NTP
    has not set the clock, except with --dry-run.

    Example:

        rounds-edge --config /etc/rounds/node.json prune --dry-run
    """
    from datetime import datetime, timezone
    from pathlib import Path

    from . import health
    from .db import open_db
    from .retention import prune as prune_now

    config = load_config(ctx.obj["config_path"], ("db",))
    settings = _retention(config)
    if not dry_run and health.clock_synced() is False:
        raise click.ClickException("the wall clock is not set yet (NTP); pruning by it could "
                                   "delete too much. Try again once it is.")
    spool_dir = config.get("sync", {}).get("photo_dir") or Path(config["db"]).parent / "photos"
    db = open_db(config["db"])
    try:
        counts = prune_now(db, spool_dir, settings, datetime.now(timezone.utc), dry_run=dry_run)
    finally:
        db.close()
    for kind, count in counts.items():
        click.echo(f"{kind} {count}")
    if dry_run:
        click.echo("dry run: nothing deleted")


@main.command()
@click.option("--bind", default=None, help="host:port (default: the config's portal.bind "
              "or 0.0.0.0:80).")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with the config's portal.tls_cert and "
              "portal.tls_key (default bind 0.0.0.0:8443): the RFC 8908 API phones reach "
              "through DHCP option 114.")
@click.pass_context
def portal(ctx, bind, workers, tls):
    """Serve the staff portal (bind, check-in, my record, OS probes) with gunicorn.

    Runs unprivileged; on a node, nftables brings phones' port 80 (and 443)
    to it.

    Example:

        rounds-edge --config /etc/rounds/node.json portal --bind 0.0.0.0:8080
    """
    config = _load(ctx)
    settings = config.get("portal", {})
    extra = ()
    if tls:
        missing = [k for k in ("tls_cert", "tls_key") if not settings.get(k)]
        if missing:
            raise click.ClickException(f"--tls needs portal.{' and portal.'.join(missing)} "
                                       "in the node config")
        extra = ("--certfile", settings["tls_cert"], "--keyfile", settings["tls_key"])
    bind = bind or settings.get("tls_bind" if tls else "bind",
                                "0.0.0.0:8443" if tls else "0.0.0.0:80")
    exec_gunicorn("edge.portal:create_app()", bind, workers, "ROUNDS_EDGE_CONFIG",
                  ctx.obj["config_path"], extra)


@main.command()
@click.option("--interval", type=float, default=None,
              help="Seconds between passes (default: the config's gate.interval or 0.5).")
@click.option("--once", is_flag=True, help="Make one pass and exit.")
@click.option("--nft", "nft_path", default=None, help="Path of nft (default: from PATH, "
              "else /usr/sbin/nft).")
@click.pass_context
def gate(ctx, interval, once, nft_path):
    """Keep the nftables set of released phones equal to the node database.

    The one privileged process of a node (CAP_NET_ADMIN only): the portal
    writes released MACs to the database, the gate adds them to the set
    "inet rounds released" with their remaining time and removes the ones no
    longer released, every half second. Exits 2 at once when nft, the set or
    the capability is missing.

    Example:

        rounds-edge --config /etc/rounds/node.json gate
    """
    from .gate import Gate, GateError

    config = load_config(ctx.obj["config_path"], ("db",))
    interval = interval or float(config.get("gate", {}).get("interval", 0.5))
    try:
        worker = Gate(config["db"], nft=nft_path)
        if once:
            worker.check()
            added, renewed, removed = worker.reconcile()
            click.echo(f"released set: {added} added, {renewed} renewed, {removed} removed")
        else:
            worker.run(stop_on_signals(lambda: None), interval)
    except GateError as exc:
        click.echo(f"rounds-edge gate: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option("--interface", default=None, help="Capture here (default: the config's "
              "presence.interface, else wifi.interface, else wlan0).")
@click.pass_context
def presence(ctx, interface):
    """Sense which phones are here: DHCP/ARP sniffer and hostapd station events.

    Bound phones get presence intervals (closed after presence.away_after
    seconds of silence, default 300) and a presence check-in to the event on
    now; every other device only counts toward the per-minute occupancy.
    Needs CAP_NET_RAW only (rounds-presence.service). Exits 2 at once when
    the interface is missing or the capability is not there, and 1 when its
    sniffer or hostapd thread dies. Node config section "presence":
    interface, sniff, hostapd_ctrl, away_after, refresh, hostapd_poll.

    Example:

        rounds-edge --config /etc/rounds/node.json presence
    """
    from .presence.capture import CaptureError
    from .presence.service import Presence, PresenceConfigError, PresenceSettings

    config = load_config(ctx.obj["config_path"], ("db", "site_secret"))
    try:
        service = Presence(PresenceSettings.from_config(config, interface))
        service.check()
    except (PresenceConfigError, CaptureError) as exc:
        click.echo(f"rounds-edge presence: {exc}", err=True)
        sys.exit(2)
    stop = stop_on_signals(lambda: None)
    try:
        code = service.run(stop)
    except CaptureError as exc:
        click.echo(f"rounds-edge presence: {exc}", err=True)
        sys.exit(2)
    sys.exit(code)


@main.command()
@click.option("--source", default="0", show_default=True,
              help="Camera device index (0 = /dev/video0), or a video/image file.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Write the safe photo here as <sha256>.jpg (created if missing).")
@click.option("--zone", default=None, help="The zone the photo is of (printed with the result).")
@click.option("--warmup", default=None, type=int,
              help="Frames to drop first while the camera's exposure settles "
                   "(default 5 for a camera, 0 for a file).")
def snap(source, out_dir, zone, warmup):
    """Take a photo with the node camera and make it privacy-safe.

    Captures one frame (cv2.VideoCapture), then runs the photo pipeline:
    orientation, every metadata block dropped, long side at most 1600 px,
    faces blurred. Writes <sha256>.jpg into --out and prints one line:
    "<sha256> faces=<n> zone=<zone> <path>". Exits 2 when the camera cannot be
    opened or gives no frame, 1 when the frame is refused as a photo.

    Example:

        rounds-edge snap --source 0 --zone ward-3 --out /var/lib/rounds/photos
    """
    from pathlib import Path

    from .camera.capture import CaptureError, capture_frame
    from .camera.pipeline import PhotoRejected, process

    is_device = source.isdigit()
    try:
        frame = capture_frame(source, warmup=(5 if is_device else 0) if warmup is None
                              else warmup)
    except CaptureError as exc:
        click.echo(f"rounds-edge snap: {exc}", err=True)
        sys.exit(2)
    try:
        photo = process(frame)
    except PhotoRejected as exc:
        click.echo(f"rounds-edge snap: {exc.reason}", err=True)
        sys.exit(1)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{photo.sha256}.jpg"
    tmp = path.with_suffix(".jpg.tmp")
    tmp.write_bytes(photo.jpeg)
    tmp.replace(path)
    click.echo(f"{photo.sha256} faces={photo.faces} zone={zone or '-'} {path}")


if __name__ == "__main__":
    main()
