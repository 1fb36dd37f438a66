"""``rounds-provision``: site, node and zone provisioning for the facilities team.

Domain errors are ``ProvisioningError``s (``NodeConfigError``s, and the hub's
``registry.ZoneError``) raised by the modules; only here do they become
``click.ClickException`` (exit 1, the message on stderr). The hub's tables
are reached only through ``hub.fleet.registry``.
"""

import json
from contextlib import contextmanager
from pathlib import Path

import click

from hub.fleet import registry

DEFAULT_SITE_DIR = "/etc/rounds/site"


@contextmanager
def _domain_errors():
    from . import ProvisioningError
    from .nodeconfig import NodeConfigError

    try:
        yield
    except (ProvisioningError, NodeConfigError, registry.ZoneError) as exc:
        raise click.ClickException(str(exc)) from None


def _step(message: str) -> None:
    click.echo(f"  - {message}")


def _site(ctx):
    from .site import load_site

    with _domain_errors():
        return load_site(ctx.obj["site_dir"])


def _hub_db_path(ctx) -> str:
    return _site(ctx).hub_db_path()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--site-dir", envvar="ROUNDS_SITE_DIR", default=DEFAULT_SITE_DIR,
              show_default=True, type=click.Path(file_okay=False),
              help="The site directory (secrets, CA, broker config, bundles). "
                   "Env: ROUNDS_SITE_DIR.")
@click.pass_context
def main(ctx, site_dir):
    """Provision a Rounds site, its zones and its nodes.

    Run `site init` once, then `zone add` for each place a node watches, then
    `node add` for each node: it writes the node's bundle for its SD card.

    Example:

    \b
        rounds-provision --site-dir /etc/rounds/site node add ward-3-a --zone ward-3
    """
    ctx.ensure_object(dict)
    ctx.obj["site_dir"] = Path(site_dir)


# --- site ----------------------------------------------------------------------

@main.group()
def site():
    """The site: secret, certificate authority, broker and hub configs.

    Example:

    \b
        rounds-provision site init --site st-mary --name "St Mary" --hub-host hub.hosp.local
    """


@site.command("init")
@click.option("--site", "site_id", required=True, help="Site id (a slug; in every MQTT topic).")
@click.option("--name", required=True, help="The site's name (on labels).")
@click.option("--hub-host", required=True,
              help="Host name or IP address the nodes reach the hub's broker at.")
@click.option("--mqtt-port", type=int, default=None, help="Broker TLS port [8883].")
@click.option("--bind", default=None, help="Address the broker listens on [0.0.0.0].")
@click.option("--hub-db", type=click.Path(dir_okay=False), default=None,
              help="The hub database [/var/lib/rounds/hub.db].")
@click.option("--timezone", default=None, help="The site's time zone [Asia/Shanghai].")
@click.option("--broker-user", default=None,
              help="Account Mosquitto runs as; it gets the broker's files [current user].")
@click.option("--force", is_flag=True, help="Regenerate the CA, broker certificate, hub "
              "credentials and configs (every node then needs a new bundle).")
@click.option("--new-site-secret", is_flag=True, help="With --force: also a new site secret "
              "(every phone must bind again).")
@click.option("--ingest-workers", type=int, default=None,
              help="MQTT users for N `rounds-hub ingest --workers N` processes (hub, hub.2, "
              "...); on an existing site, adds the missing ones and reloads the broker [1].")
@click.pass_context
def site_init(ctx, site_id, name, hub_host, mqtt_port, bind, hub_db, timezone, broker_user,
              force, new_site_secret, ingest_workers):
    """Make the site: secret, CA, broker TLS certificate, hub credentials and configs.

    Writes into --site-dir with safe modes (directories 0700, secrets and
    keys 0600, certificates 0644): site_secret, ca/, broker/mosquitto.conf
    (TLS listener, no anonymous clients, password file, ACL, pid file for
    reloads), hub.json (for rounds-hub --config). Running it again with the
    same values changes nothing. --force regenerates the CA, the broker's
    certificate, the hub's MQTT password and the configs, and keeps the site
    secret and the nodes' credentials; restart the broker and re-run
    `node add <node> --force` for every node afterwards.

    Example:

    \b
        rounds-provision site init --site st-mary --name "St Mary" --hub-host hub.hosp.local
    """
    from .site import init_site

    if new_site_secret and not force:
        raise click.ClickException("--new-site-secret needs --force")
    site_dir = ctx.obj["site_dir"]
    with _domain_errors():
        result = init_site(site_dir, site=site_id, name=name, hub_host=hub_host,
                           mqtt_port=mqtt_port, bind=bind, hub_db=hub_db, timezone=timezone,
                           broker_user=broker_user, force=force, new_secret=new_site_secret,
                           ingest_workers=ingest_workers, step=_step)
    s = result.site
    if not result.changed:
        click.echo(f"Site {s.site!r} in {s.dir} is already initialised with these values: "
                   "nothing changed.")
        return
    click.echo(f"Site {s.site!r} written to {s.dir} ({len(result.written)} files).")
    if result.reload:
        click.echo(f"  {result.reload[0].upper()}{result.reload[1:]}.")
        return
    click.echo(f"  Broker: mosquitto -c {s.broker_conf}  (TLS on {s.bind}:{s.mqtt_port}; "
               f"reload with SIGHUP, pid in {s.pid_file})")
    click.echo(f"  Hub:    rounds-hub --config {s.hub_json} ingest")
    if result.regenerated:
        click.echo("  Restart the broker: its certificate is new (a reload does not load it).")
    if result.nodes:
        click.echo(f"  Give every node a new bundle (its CA copy is outdated): "
                   f"{', '.join(result.nodes)} (rounds-provision node add <node> --zone <zone> "
                   "--force).")
    click.echo("Next: rounds-provision zone add <zone> --name <name>, then node add.")


# --- zones ---------------------------------------------------------------------

@main.group()
def zone():
    """Zones in the hub database: campus / building / floor / name.

    Example:

    \b
        rounds-provision zone add ward-3 --name "Ward 3" --building "Inpatient" --floor 3
    """


@zone.command("add")
@click.argument("zone_id")
@click.option("--name", required=True, help="The zone's name (shown on labels and the hub).")
@click.option("--campus", default=None)
@click.option("--building", default=None)
@click.option("--floor", default=None)
@click.option("--lat", type=float, default=None, help="Latitude (with --lon).")
@click.option("--lon", type=float, default=None, help="Longitude (with --lat).")
@click.pass_context
def zone_add(ctx, zone_id, name, campus, building, floor, lat, lon):
    """Add a zone, or update the fields given of an existing one.

    ZONE_ID is a slug (lower-case letters, digits, - and _).

    Example:

    \b
        rounds-provision zone add ward-3 --name "Ward 3" --campus main --building B --floor 3
    """
    with _domain_errors():
        what = registry.add_zone(_hub_db_path(ctx), zone_id, name=name, campus=campus,
                                 building=building, floor=floor, lat=lat, lon=lon)
    click.echo(f"Zone {zone_id} {what}.")


@zone.command("list")
@click.pass_context
def zone_list(ctx):
    """List the zones of the hub.

    Example:

    \b
        rounds-provision zone list
    """
    rows = registry.list_zones(_hub_db_path(ctx))
    _table(["zone", "name", "campus", "building", "floor", "lat", "lon"], rows)


# --- nodes ---------------------------------------------------------------------

@main.group()
def node():
    """Nodes: add (credentials, ACL, hub registration, bundle), list, revoke, replace.

    Example:

    \b
        rounds-provision node add ward-3-a --zone ward-3 --ssid Rounds-Staff
    """


def _bundle_options(command):
    for option in reversed([
        click.option("--wheels", type=click.Path(exists=True, file_okay=False), default=None,
                     help="A directory of wheels (Rounds and its dependencies) to put in the "
                          "bundle; the node installs from them, offline."),
        click.option("--force", is_flag=True,
                     help="Re-provision an existing node: new credentials, new bundle."),
    ]):
        command = option(command)
    return command


@node.command("add")
@click.argument("node_id")
@click.option("--zone", "zone_id", required=True, help="The zone it watches (zone add first).")
@click.option("--shape", type=click.Choice(["ward", "hall"]), default="ward", show_default=True,
              help="ward: the Pi's radio is the access point; hall: gateway of the APs' VLAN.")
@click.option("--ssid", default=None, help="Staff SSID (ward) [Rounds-Staff]; the same on "
              "every node.")
@click.option("--psk", envvar="ROUNDS_WIFI_PSK", default=None,
              help="WPA2 passphrase (ward; none: open). Env: ROUNDS_WIFI_PSK.")
@click.option("--interface", default=None,
              help="Interface phones arrive on [wlan0]; a hall node's VLAN, e.g. eth0.42.")
@click.option("--uplink", type=click.Choice(["none", "intranet"]), default="none",
              show_default=True, help="Forward released phones to the hospital network?")
@click.option("--upstream-dns", default=None, help="Hospital DNS server (with --uplink intranet).")
@click.option("--uplink-interface", default="eth0", show_default=True)
@click.option("--country", default="CN", show_default=True, help="Wi-Fi country code.")
@click.option("--channel", type=int, default=6, show_default=True, help="2.4 GHz channel.")
@click.option("--pip-index", default=None,
              help="The hospital's pip mirror the node installs Rounds from (no --wheels).")
@_bundle_options
@click.pass_context
def node_add(ctx, node_id, zone_id, shape, ssid, psk, interface, uplink, upstream_dns,
             uplink_interface, country, channel, pip_index, wheels, force):
    """Provision a node: credentials, ACL, hub registration, bundle and label.

    Writes <site-dir>/bundles/NODE_ID/ and NODE_ID.tar.gz: the node config
    with its secrets, the rendered OS config, the CA, first-boot.sh and the
    label (PNG, PDF). Then reloads the broker (SIGHUP).

    Example:

    \b
        rounds-provision node add ward-3-a --zone ward-3 --pip-index https://pypi.hosp/simple
    """
    from .nodes import add_node, node_settings

    site_ = _site(ctx)
    with _domain_errors():
        settings = node_settings(node_id, zone_id, shape=shape, ssid=ssid, psk=psk,
                                 interface=interface, uplink=uplink, upstream_dns=upstream_dns,
                                 uplink_interface=uplink_interface, country=country,
                                 channel=channel, pip_index=pip_index)
        added = add_node(site_, settings, force=force, wheels=wheels, step=_step)
    _report_added(added, pip_index, wheels)


@node.command("list")
@click.pass_context
def node_list(ctx):
    """List the nodes: zone, state at the hub, revoked, credentials at the broker.

    Example:

    \b
        rounds-provision node list
    """
    from .nodes import list_nodes

    site_ = _site(ctx)
    with _domain_errors():
        rows = list_nodes(site_)
    _table(["node", "zone", "state", "revoked", "credentials"],
           [{**row, "revoked": "yes" if row["revoked"] else "no",
             "credentials": "yes" if row["credentials"] else "no"} for row in rows])


@node.command("revoke")
@click.argument("node_id")
@click.pass_context
def node_revoke(ctx, node_id):
    """Cut a node off: its credentials and ACL go, the broker reloads, the hub marks it revoked.

    The broker drops the node's connection at the reload and refuses its
    next connect; other nodes stay connected. Its bundle is deleted.

    Example:

    \b
        rounds-provision node revoke ward-3-a
    """
    from .nodes import revoke_node

    site_ = _site(ctx)
    with _domain_errors():
        result = revoke_node(site_, node_id, step=_step)
    click.echo(f"Node {node_id} revoked; {result.message}.")


@node.command("replace")
@click.argument("old")
@click.argument("new")
@_bundle_options
@click.pass_context
def node_replace(ctx, old, new, wheels, force):
    """Replace node OLD by NEW: same zone and settings, new credentials; OLD is revoked.

    Example:

    \b
        rounds-provision node replace ward-3-a ward-3-b
    """
    from .nodes import replace_node

    site_ = _site(ctx)
    with _domain_errors():
        added = replace_node(site_, old, new, force=force, wheels=wheels, step=_step)
    click.echo(f"Node {old} revoked.")
    _report_added(added, None, wheels)


def _report_added(added, pip_index, wheels) -> None:
    click.echo(f"Node {added.node} provisioned; {added.reload.message}.")
    click.echo(f"  Bundle: {added.bundle}/  and  {added.tarball}")
    click.echo(f"  Label:  {added.bundle / 'label.pdf'}")
    if not wheels and not pip_index:
        click.echo("  Note: no --wheels and no --pip-index: the node installs Rounds from "
                   "the index its /etc/pip.conf names.")


def _table(columns: list[str], rows: list[dict]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


# --- a hospital group: campus brokers bridged to the group's broker ----------------

@main.group()
def group():
    """A hospital group: one broker that every campus (site) bridges its uplinks to.

    Example:

    \b
        rounds-provision group init /etc/rounds/group --name "City Hospitals" \\
            --host group.hosp.local --campus st-mary --campus north
    """


@group.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="The group's name (in its CA).")
@click.option("--host", required=True,
              help="Host name or IP address the campuses reach the group broker at.")
@click.option("--campus", "campuses", multiple=True, required=True,
              help="A campus's site id (its `site init --site`); repeat for each.")
@click.option("--port", type=int, default=None, help="Group broker TLS port [8883].")
@click.option("--bind", default=None, help="Address the group broker listens on [0.0.0.0].")
def group_init(directory, name, host, campuses, port, bind):
    """Make the group: CA, group broker (TLS, one user per campus, ACL), group hub credentials.

    Writes into DIRECTORY: ca/, broker/mosquitto.conf (its ACL lets campus
    SITE's bridge write only rounds/v1/SITE/node/+/up/# and its link state;
    the group hub, user group-hub, reads them all), group-hub.json, and
    campuses/SITE.json for each campus: hand that file and ca/ca.crt to the
    campus for `site bridge`. Run again with more --campus to add campuses
    (the others keep their credentials; a running broker is reloaded).

    Example:

    \b
        rounds-provision group init /etc/rounds/group --name "City Hospitals" \\
            --host group.hosp.local --campus st-mary --campus north
    """
    from .bridge import init_group

    with _domain_errors():
        result = init_group(directory, name=name, host=host, campuses=campuses, port=port,
                            bind=bind, step=_step)
    g = result.group
    if not result.changed:
        click.echo(f"Group {g.name!r} in {g.dir} already has these campuses: nothing changed.")
        return
    click.echo(f"Group {g.name!r} written to {g.dir}; campuses added: {', '.join(result.added)}.")
    click.echo(f"  Broker:    mosquitto -c {g.broker_conf}  (TLS on {g.bind}:{g.port})")
    click.echo(f"  Group hub: MQTT settings and campuses in {g.hub_json}; add \"db\" (a "
               "postgresql:// DSN) and \"photos_dir\", then: rounds-hub --config "
               f"{g.hub_json} group ingest")
    if result.reload_message:
        click.echo(f"  {result.reload_message[0].upper()}{result.reload_message[1:]}.")
    click.echo(f"Next, on each new campus: rounds-provision site bridge --group-ca {g.ca_crt} "
               f"--credentials {g.credentials('<site>')}")


@site.command("bridge")
@click.option("--group-ca", required=True, type=click.Path(dir_okay=False),
              help="The group's CA certificate (its ca/ca.crt).")
@click.option("--credentials", required=True, type=click.Path(dir_okay=False),
              help="This campus's credentials file from group init (campuses/<site>.json).")
@click.option("--group-host", default=None,
              help="The group broker's host (as its certificate names it) [from --credentials].")
@click.option("--group-port", type=int, default=None,
              help="The group broker's TLS port [from --credentials].")
@click.option("--restart-timeout", default="5 30", show_default=True,
              help="Seconds before the bridge reconnects: constant, or 'BASE CAP' (jitter).")
@click.pass_context
def site_bridge(ctx, group_ca, credentials, group_host, group_port, restart_timeout):
    """Bridge this site's broker to the hospital group's broker.

    Writes broker/bridge.d/rounds-group.conf (TLS to the group, checked
    against --group-ca; this campus's own user there; persistent session, so
    uplinks queue here while the group is unreachable) and makes
    mosquitto.conf read it. Only the nodes' uplinks go out; nothing comes in;
    the site's hub is unaffected. Restart the broker afterwards (Mosquitto
    does not re-read a bridge on reload); `site init --force` keeps it.

    Example:

    \b
        rounds-provision site bridge --group-ca group-ca.crt --credentials st-mary.json \\
            --group-host group.hosp.local --group-port 8883
    """
    from .bridge import install_bridge

    site_ = _site(ctx)
    with _domain_errors():
        result = install_bridge(site_, group_ca=group_ca, credentials=credentials,
                                group_host=group_host, group_port=group_port,
                                restart_timeout=restart_timeout, step=_step)
    if not result.changed:
        click.echo(f"Site {site_.site!r} is already bridged this way: nothing changed.")
        return
    click.echo(f"Bridge written to {result.conf}.")
    click.echo(f"  Restart the broker (mosquitto -c {site_.broker_conf}): a bridge is read "
               "only at start.")


# --- the OS configuration alone --------------------------------------------------

@main.command("render-node")
@click.argument("node_config", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
def render_node_command(node_config, out_dir):
    """Render a node's OS configuration (hostapd, dnsmasq, nftables, units).

    NODE_CONFIG is the node's JSON config; the files go to OUT_DIR, and the
    place each is installed on the node is printed beside it. (`node add`
    does this for you and packs a bundle.)

    Example:

    \b
        rounds-provision render-node /etc/rounds/node.json ./hall-a-1
    """
    from .nodeconfig import NodeConfigError, destinations, render_node

    try:
        settings = json.loads(Path(node_config).read_text())
        written = render_node(settings, out_dir)
        places = destinations(settings)
    except (json.JSONDecodeError, NodeConfigError) as exc:
        raise click.ClickException(f"{node_config}: {exc}") from None
    for path in written:
        click.echo(f"{path}  ->  {places.get(path.name, '?')}")


if __name__ == "__main__":
    main()
