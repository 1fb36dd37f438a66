"""A site's nodes: add, list, revoke, replace (``rounds-provision node ...``).

Adding a node gives it MQTT credentials (a random password; only its ``$7$``
hash goes into the broker's password file), its own ACL block, a row in the
hub's ``nodes`` table and a bundle for its SD card; then the broker is
reloaded by SIGHUP (``broker.reload``), never restarted. Everything that can
be refused (node id, zone, Wi-Fi and network settings) is checked before
anything changes, and the bundle is built aside and moved in at the end.

Revoking removes the node's password line and ACL block, reloads the
broker, and marks the node revoked at the hub. Mosquitto 2.0 re-checks every
connected client against the reloaded password file and disconnects the
ones whose user is gone, so a revoked node is cut off at once (not only at
its next connect); and with its ACL block gone, anything it might still
send is refused (PUBACK "Not authorized"). The other nodes stay connected.

``nodes/<node>.json`` in the site directory keeps each node's settings (no
password), so ``node replace`` can give them to the replacement.
"""

import fcntl
import json
import re
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from hub.fleet import registry

from . import ProvisioningError, bundle
from .broker import (Reload, format_passwords, is_ingest_worker, password_hash, read_passwords,
                     reload, render_acl)
from .files import SECRET, write_file
from .site import HUB_USER, Site

NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # as nodeconfig


class NodeError(ProvisioningError):
    """The node id is invalid, taken, or unknown."""


@dataclass
class Added:
    node: str
    bundle: Path
    tarball: Path
    reload: Reload | None


def node_settings(node: str, zone: str, *, shape: str = "ward", ssid: str | None = None,
                  psk: str | None = None, interface: str | None = None,
                  uplink: str = "none", upstream_dns: str | None = None,
                  uplink_interface: str = "eth0", country: str = "CN", channel: int = 6,
                  address: str = "10.42.0.1/24", dhcp_range=("10.42.0.20", "10.42.0.250"),
                  pip_index: str | None = None) -> dict:
    """A node's settings as ``node add`` takes them (checked when rendered)."""
    if shape == "hall" and not interface:
        raise NodeError("a hall node needs --interface: the VLAN interface the access "
                        "points carry the staff SSID on (e.g. eth0.42)")
    wifi = {"interface": interface or "wlan0"}
    if shape == "ward":
        wifi.update(ssid=ssid or "Rounds-Staff", psk=psk, country=country, channel=channel)
    network = {"address": address, "dhcp_range": list(dhcp_range), "uplink": uplink,
               "uplink_interface": uplink_interface}
    if upstream_dns:
        network["upstream_dns"] = upstream_dns
    return {"node": node, "zone": zone, "shape": shape, "wifi": wifi, "network": network,
            "pip_index": pip_index}


def add_node(site: Site, settings: dict, *, force: bool = False, wheels: Path | None = None,
             step=lambda message: None) -> Added:
    with _locked(site):
        added = _add(site, settings, force=force, wheels=wheels, step=step)
    step("reloading the broker")
    added.reload = reload(site.pid_file)
    return added


def revoke_node(site: Site, node: str, *, step=lambda message: None) -> Reload:
    with _locked(site):
        _revoke(site, node, step)
    step("reloading the broker")
    return reload(site.pid_file)


def replace_node(site: Site, old: str, new: str, *, force: bool = False,
                 wheels: Path | None = None, step=lambda message: None) -> Added:
    """``new`` gets ``old``'s zone and settings with new credentials; ``old``
    is revoked. One broker reload for both."""
    if old == new:
        raise NodeError("a node cannot replace itself: `node add --force` gives it new "
                        "credentials")
    with _locked(site):
        settings = _registered(site, old)
        if settings is None:
            raise NodeError(f"node {old!r} was not provisioned from {site.dir}: nothing to "
                            "take its settings from (add the new node with `node add`)")
        settings = {key: value for key, value in settings.items()
                    if key not in ("revoked", "added_at")}
        added = _add(site, {**settings, "node": new}, force=force, wheels=wheels, step=step)
        _revoke(site, old, step)
    step("reloading the broker")
    added.reload = reload(site.pid_file)
    return added


def list_nodes(site: Site) -> list[dict]:
    """Every node of the site's directory or its hub: node, zone, state,
    revoked, credentials (a password line in the broker's file)."""
    hub = registry.registered_nodes(site.hub_db_path())
    users = read_passwords(site.passwd)
    registered = {path.stem: json.loads(path.read_text())
                  for path in site.nodes_dir.glob("*.json")}
    rows = []
    for node in sorted(set(hub) | set(registered)):
        at_hub, here = hub.get(node, {}), registered.get(node, {})
        rows.append({"node": node, "zone": at_hub.get("zone") or here.get("zone"),
                     "zone_name": at_hub.get("zone_name"),
                     "state": at_hub.get("state") or ("never seen" if at_hub else "not at hub"),
                     "revoked": bool(at_hub.get("revoked", here.get("revoked", False))),
                     "credentials": node in users})
    return rows


# --- the steps, under the site lock ------------------------------------------

def _add(site: Site, settings: dict, *, force: bool, wheels, step) -> Added:
    node = settings["node"]
    if not isinstance(node, str) or not NODE_ID.match(node) or node == HUB_USER:
        raise NodeError(f"node id {node!r}: expected letters, digits, - and _ (at most 64, "
                        f"not {HUB_USER!r}); it is the node's MQTT user name")
    existing = _registered(site, node)
    if (existing or node in read_passwords(site.passwd)) and not force:
        state = "revoked" if existing and existing.get("revoked") else "provisioned"
        raise NodeError(f"node {node!r} is already {state}. Nothing changed; give --force "
                        "to give it new credentials and a new bundle (its old password "
                        "stops working)")
    zone = registry.require_zone(site.hub_db_path(), settings["zone"])
    password = secrets.token_urlsafe(24)
    staging = site.bundles_dir / f".{node}.new"
    tarball = site.bundles_dir / f"{node}.tar.gz"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        step("bundle: node config, OS config, CA, first-boot script, label")
        bundle.build_bundle(site, settings, password, staging, zone_name=zone["name"],
                            pip_index=settings.get("pip_index"), wheels=wheels)
        step(f"packing {tarball.name}")
        packed = bundle.pack(staging, staging.with_suffix(".tar.gz"), node)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        staging.with_suffix(".tar.gz").unlink(missing_ok=True)
        raise
    step("MQTT credentials and ACL")
    users = read_passwords(site.passwd)
    users[node] = password_hash(password)
    _write_broker_files(site, users)
    write_file(site.nodes_dir / f"{node}.json", json.dumps(
        {**settings, "revoked": False,
         "added_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        indent=2) + "\n", SECRET)
    step(f"registering {node} in zone {zone['zone']} at the hub")
    registry.register_node(site.hub_db_path(), node, zone["zone"])
    bundle.install(staging, site.bundles_dir / node)
    packed.replace(tarball)
    return Added(node, site.bundles_dir / node, tarball, None)


def _revoke(site: Site, node: str, step) -> None:
    users = read_passwords(site.passwd)
    settings = _registered(site, node)
    at_hub = node in registry.registered_nodes(site.hub_db_path())
    if node == HUB_USER or is_ingest_worker(node, HUB_USER) \
            or not (settings or at_hub or node in users):
        raise NodeError(f"no node {node!r} in site {site.site!r}")
    step("removing its MQTT credentials and ACL")
    users.pop(node, None)
    _write_broker_files(site, users)
    if settings is not None:
        write_file(site.nodes_dir / f"{node}.json",
                   json.dumps({**settings, "revoked": True}, indent=2) + "\n", SECRET)
    step("marking it revoked at the hub")
    registry.revoke_node(site.hub_db_path(), node)
    # Its bundle holds a dead password and the live site secret.
    shutil.rmtree(site.bundles_dir / node, ignore_errors=True)
    (site.bundles_dir / f"{node}.tar.gz").unlink(missing_ok=True)


def _write_broker_files(site: Site, users: dict[str, str]) -> None:
    owner = site.broker_owner()
    write_file(site.passwd, format_passwords(users), SECRET, owner)
    write_file(site.acl, render_acl(site.site, HUB_USER, [u for u in users if u != HUB_USER]),
               SECRET, owner)


def _registered(site: Site, node: str) -> dict | None:
    if not NODE_ID.match(node or ""):
        return None
    try:
        return json.loads((site.nodes_dir / f"{node}.json").read_text())
    except FileNotFoundError:
        return None


@contextmanager
def _locked(site: Site):
    """One provisioning change at a time per site (two technicians, one file)."""
    with open(site.dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
