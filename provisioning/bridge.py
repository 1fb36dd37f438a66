"""A hospital group: every campus (a site, with its own broker and hub)
bridges its nodes' uplinks to the group's broker, where one group hub reads
them all (``rounds-provision group init`` and ``site bridge``).

The group directory (``group init DIR``) holds::

    group.json              0644  what group init was given (name, host, port, bind, campuses)
    ca/ca.key               0600  the group CA's key (never leaves this directory)
    ca/ca.crt               0644  the group CA: every campus bridge trusts it
    broker/                 0700  the group broker: mosquitto.conf, passwd, acl, ca.crt,
                                  server.crt, server.key, data/ (persistence, pid)
    group-hub.json          0600  the group hub's MQTT settings (user group-hub)
    campuses/<site>.json    0600  what campus <site> gets: its bridge user and password

On a campus, ``site bridge`` writes ``broker/group-ca.crt``,
``broker/bridge.d/rounds-group.conf`` (0600: it holds the bridge's password)
and the ``include_dir`` line at the end of ``broker/mosquitto.conf``.

What crosses: only ``rounds/v1/<site>/node/+/up/#`` (batches, photos with
their MQTT v5 user properties, the retained status), out, QoS 1; the link's
own state on ``rounds/v1/<site>/bridge/state``. Nothing comes in. The
campus's ACL does not apply to the bridge (it is the broker's own session,
not a client; tests/test_group_bridge.py shows it forwarding with no ACL
entry); the group's ACL does: campus ``<site>``'s user may write only its
own site's topics there.
"""

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from cryptography import x509

from protocol.topics import ROOT, all_nodes_up

from . import ProvisioningError
from .broker import (TEMPLATES, format_passwords, include_lines, password_hash, read_passwords,
                     reload, render_conf)
from .files import DIR, PUBLIC, SECRET, ensure_dir, write_file
from .pki import make_ca, make_server_cert
from .site import _HOST, SITE_ID, BrokerLayout, Site, _is_ip

GROUP_HUB_USER = "group-hub"
CONNECTION = "rounds-group"
BRIDGE_FILE = "rounds-group.conf"
RESTART_TIMEOUT = "5 30"  # jitter between 5 s and 30 s: 37 campuses do not reconnect at once
KEEPALIVE = 30
DEFAULTS = {"port": 8883, "bind": "0.0.0.0"}


class GroupError(ProvisioningError):
    """The group directory, a campus's credentials or a bridge cannot be made as asked."""


def bridge_user(site: str) -> str:
    """Campus ``site``'s MQTT user on the group broker."""
    return f"bridge-{site}"


def state_topic(site: str) -> str:
    """Where the bridge of ``site`` says whether its group link is up (retained 1/0)."""
    return f"{ROOT}/{site}/bridge/state"


# --- the campus side ---------------------------------------------------------------

def render_bridge(*, site: str, host: str, port: int, cafile, username: str, password: str,
                  restart_timeout: str = RESTART_TIMEOUT, keepalive: int = KEEPALIVE) -> str:
    """The bridge section of campus ``site``'s broker (an ``include_dir`` file)."""
    return Template((TEMPLATES / "bridge.conf.tmpl").read_text()).substitute(
        site=site, connection=f"{CONNECTION}-{site}", host=host, port=port, cafile=cafile,
        username=username, password=password, local_clientid=f"bridge.{CONNECTION}",
        restart_timeout=restart_timeout, keepalive=keepalive, state_topic=state_topic(site),
        uplinks=all_nodes_up(site))


@dataclass
class BridgeResult:
    changed: bool
    written: list[Path]
    conf: Path  # the bridge section


def install_bridge(site: Site, *, group_ca, credentials, group_host: str | None = None,
                   group_port: int | None = None, restart_timeout: str = RESTART_TIMEOUT,
                   step=lambda message: None) -> BridgeResult:
    """Write the bridge of ``site``'s broker to the group broker. ``credentials``
    is the file ``group init`` wrote for this campus; the group's host and port
    default to the ones it names. Running it again with the same values writes
    nothing. The broker reads a bridge only at start: restart it afterwards."""
    creds = _read_credentials(credentials)
    if creds.get("site") != site.site or creds.get("username") != bridge_user(site.site):
        raise GroupError(f"{credentials} holds the group credentials of campus "
                         f"{creds.get('site')!r}, not of this site {site.site!r}: give "
                         f"the group's campuses/{site.site}.json")
    host = group_host or creds.get("group_host")
    port = group_port if group_port is not None else creds.get("group_port")
    if not host or not (_is_ip(host) or _HOST.match(host)):
        raise GroupError(f"--group-host {host!r}: expected the host name or IP address the "
                         "campus reaches the group broker at (as its certificate names it)")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise GroupError(f"--group-port {port!r}: expected 1-65535")
    if not _restart_timeout_ok(restart_timeout):
        raise GroupError(f"--restart-timeout {restart_timeout!r}: expected seconds, or "
                         "BASE CAP (e.g. '5 30')")
    ca_pem = _read_ca(group_ca)

    owner = site.broker_owner()
    broker_dir = site.broker_dir.absolute()  # Mosquitto reads them from its own cwd
    bridge_dir = site.bridge_dir
    group_ca_copy = broker_dir / "group-ca.crt"
    conf = render_bridge(site=site.site, host=host, port=port, cafile=group_ca_copy,
                         username=creds["username"], password=creds["password"],
                         restart_timeout=restart_timeout)
    try:
        broker_conf = site.broker_conf.read_text()
    except FileNotFoundError:
        raise GroupError(f"no broker config {site.broker_conf}: run `rounds-provision site "
                         "init` first") from None
    include = include_lines(bridge_dir)
    wanted = {group_ca_copy: (ca_pem, PUBLIC), bridge_dir / BRIDGE_FILE: (conf.encode(), SECRET)}
    if include.strip() not in broker_conf:
        wanted[site.broker_conf] = ((broker_conf + include).encode(), PUBLIC)
    written = []
    ensure_dir(bridge_dir, DIR, owner)
    for path, (data, mode) in wanted.items():
        if not path.exists() or path.read_bytes() != data:
            step(f"{path.name}: {'new' if not path.exists() else 'changed'}")
            written.append(write_file(path, data, mode, owner))
    return BridgeResult(changed=bool(written), written=written, conf=bridge_dir / BRIDGE_FILE)


def _read_credentials(path) -> dict:
    try:
        creds = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GroupError(f"--credentials {path}: no such file (the group's "
                         "campuses/<site>.json, from `rounds-provision group init`)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise GroupError(f"--credentials {path}: cannot read it: {exc}") from None
    if not isinstance(creds, dict) or not all(
            isinstance(creds.get(k), str) and creds[k] for k in ("site", "username", "password")):
        raise GroupError(f"--credentials {path}: not a campus credentials file written by "
                         "`rounds-provision group init`")
    return creds


def _read_ca(path) -> bytes:
    try:
        pem = Path(path).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
    except FileNotFoundError:
        raise GroupError(f"--group-ca {path}: no such file (the group's ca/ca.crt)") from None
    except (OSError, ValueError) as exc:
        raise GroupError(f"--group-ca {path}: not a PEM certificate ({exc})") from None
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise GroupError(f"--group-ca {path}: not a CA certificate (give the group's ca/ca.crt)")
    return pem


def _restart_timeout_ok(text: str) -> bool:
    parts = text.split()
    return 1 <= len(parts) <= 2 and all(p.isdigit() and int(p) > 0 for p in parts)


# --- the group broker --------------------------------------------------------------

def render_group_acl(campuses, hub_user: str = GROUP_HUB_USER) -> str:
    """The group broker's ACL: the group hub reads every campus's uplinks and
    link state; campus ``<site>``'s bridge user writes only its own."""
    block = Template((TEMPLATES / "group-acl-campus.tmpl").read_text())
    blocks = "".join(block.substitute(site=site, user=bridge_user(site), uplinks=all_nodes_up(site),
                                      state_topic=state_topic(site)) for site in campuses)
    return Template((TEMPLATES / "group-acl.tmpl").read_text()).substitute(
        hub_user=hub_user, campus_blocks=blocks)


def render_group_broker(broker_dir, *, port: int, bind: str, campuses,
                        password_hashes: dict[str, str], tls: dict | None, pid_file=None,
                        persistence: bool = True, log_dest: str = "stderr",
                        run_as: str | None = None) -> Path:
    """Write the group broker's mosquitto.conf, passwd and acl into
    ``broker_dir``; return the conf path. ``password_hashes``: user -> ``$7$``
    hash, the group hub's and one per campus (``bridge_user``). The config is
    a site broker's (render_conf: TLS listener, no anonymous clients, user
    name as client id, persistence, generous queues) under another title."""
    broker_dir = Path(broker_dir)
    ensure_dir(broker_dir)
    data_dir = ensure_dir(broker_dir / "data")
    passwd, acl = broker_dir / "passwd", broker_dir / "acl"
    write_file(passwd, format_passwords(password_hashes), SECRET)
    write_file(acl, render_group_acl(campuses), SECRET)
    conf = render_conf(site="group", port=port, bind=bind, password_file=passwd, acl_file=acl,
                       data_dir=data_dir, persistence=persistence, log_dest=log_dest,
                       run_as=run_as, pid_file=pid_file, tls=tls, username_as_clientid=True)
    rest = conf.partition("\n")[2]  # the title: a site's
    conf = ("# Rounds broker of a hospital group (campus bridges, the group hub). "
            "Generated; edit the template, not this file.\n" + rest)
    conf_path = broker_dir / "mosquitto.conf"
    write_file(conf_path, conf, PUBLIC)
    return conf_path


@dataclass(frozen=True)
class Group(BrokerLayout):
    """What ``group init`` was given (group.json), and where things are."""

    dir: Path = field(compare=False)
    name: str
    host: str
    port: int
    bind: str
    campuses: tuple[str, ...] = field(compare=False)

    @property
    def group_json(self) -> Path: return self.dir / "group.json"
    @property
    def hub_json(self) -> Path: return self.dir / "group-hub.json"

    def credentials(self, site: str) -> Path:
        return self.dir / "campuses" / f"{site}.json"

    def record(self) -> dict:
        return {"name": self.name, "host": self.host, "port": self.port, "bind": self.bind,
                "campuses": list(self.campuses)}


def load_group(directory) -> Group:
    directory = Path(directory)
    try:
        data = json.loads((directory / "group.json").read_text())
        return Group(dir=directory, name=data["name"], host=data["host"], port=data["port"],
                     bind=data["bind"], campuses=tuple(data["campuses"]))
    except FileNotFoundError:
        raise GroupError(f"no hospital group in {directory}: run `rounds-provision group "
                         "init` first") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GroupError(f"cannot read {directory / 'group.json'}: {exc}") from None


@dataclass
class GroupInit:
    group: Group
    changed: bool
    added: list[str]  # campuses new in this run (their credentials files are new)
    reload_message: str | None = None  # an existing group's broker, after adding campuses


def init_group(directory, *, name: str, host: str, campuses, port: int | None = None,
               bind: str | None = None, step=lambda message: None) -> GroupInit:
    """Make the group in ``directory``, or add campuses to the one there.

    A new group gets its CA, the broker's certificate for ``host`` (and
    localhost, 127.0.0.1), the group hub's credentials and one bridge user
    per campus. On an existing group (same name, host, port and bind) the
    campuses not yet in it are added: new credentials files, the password
    file and ACL rewritten, the running broker reloaded (SIGHUP); the CA and
    every other campus's credentials are kept. Nothing else is changed."""
    directory = Path(directory).absolute()
    campuses = list(dict.fromkeys(campuses))
    for site in campuses:
        if not SITE_ID.match(site):
            raise GroupError(f"--campus {site!r}: expected a site id (the campus's `site init "
                             "--site`, a slug)")
    existing = load_group(directory) if (directory / "group.json").exists() else None
    wanted = Group(dir=directory, name=name, host=host,
                   port=port if port is not None else
                   (existing.port if existing else DEFAULTS["port"]),
                   bind=bind or (existing.bind if existing else DEFAULTS["bind"]),
                   campuses=tuple(dict.fromkeys([*(existing.campuses if existing else ()),
                                                 *campuses])))
    _check(wanted)
    if existing and existing != wanted:
        differ = [f"{key} is {old!r}, not {new!r}" for key, old, new in
                  ((k, v, wanted.record()[k]) for k, v in existing.record().items())
                  if key != "campuses" and old != new]
        raise GroupError(f"{directory} already holds the group {existing.name!r} and "
                         f"{'; '.join(differ)}. Nothing changed.")
    added = [site for site in wanted.campuses if not existing or site not in existing.campuses]
    if existing and not added:
        return GroupInit(existing, changed=False, added=[])
    if not existing:
        _new_group(wanted, step)
    hashes = read_passwords(wanted.passwd)
    for site in added:
        step(f"campus {site}: bridge user {bridge_user(site)}, credentials "
             f"{wanted.credentials(site)}")
        password = secrets.token_urlsafe(24)
        hashes[bridge_user(site)] = password_hash(password)
        creds = {"site": site, "username": bridge_user(site), "password": password,
                 "group_host": wanted.host, "group_port": wanted.port}
        write_file(wanted.credentials(site), json.dumps(creds, indent=2) + "\n", SECRET)
    step(f"group broker: TLS on {wanted.bind}:{wanted.port}, {len(wanted.campuses)} campuses")
    render_group_broker(wanted.broker_dir, port=wanted.port, bind=wanted.bind,
                        campuses=wanted.campuses, password_hashes=hashes,
                        pid_file=wanted.pid_file,
                        tls={"cafile": wanted.broker_dir / "ca.crt",
                             "certfile": wanted.broker_dir / "server.crt",
                             "keyfile": wanted.broker_dir / "server.key"})
    _name_campuses(wanted)
    # Last: group.json names only campuses whose credentials are written.
    write_file(wanted.group_json, json.dumps(wanted.record(), indent=2) + "\n", PUBLIC)
    message = reload(wanted.pid_file).message if existing else None
    return GroupInit(wanted, changed=True, added=added, reload_message=message)


def _name_campuses(group: Group) -> None:
    """group-hub.json lists every campus (``rounds-hub group ingest`` makes a
    schema for each); what the group's IT added there (db, photos_dir) stays."""
    hub = json.loads(group.hub_json.read_text())
    hub["campuses"] = list(group.campuses)
    write_file(group.hub_json, json.dumps(hub, indent=2) + "\n", SECRET)


def _new_group(group: Group, step) -> None:
    for directory in (group.dir, group.dir / "ca", group.dir / "campuses", group.broker_dir):
        ensure_dir(directory)
    step("certificate authority: new EC P-256 key, 10 years")
    ca_key, ca_crt = make_ca("group", group.name)
    write_file(group.ca_key, ca_key, SECRET)
    write_file(group.ca_crt, ca_crt, PUBLIC)
    names = ", ".join(dict.fromkeys((group.host, "localhost", "127.0.0.1")))
    step(f"group broker certificate for {names}")
    server_key, server_crt = make_server_cert(ca_key, ca_crt, group.host)
    write_file(group.broker_dir / "server.key", server_key, SECRET)
    write_file(group.broker_dir / "server.crt", server_crt, PUBLIC)
    write_file(group.broker_dir / "ca.crt", ca_crt, PUBLIC)
    step(f"group hub credentials ({GROUP_HUB_USER}): {group.hub_json}")
    password = secrets.token_urlsafe(24)
    write_file(group.passwd, format_passwords({GROUP_HUB_USER: password_hash(password)}), SECRET)
    local = group.bind in ("0.0.0.0", "::", "127.0.0.1", "localhost")
    hub = {"mqtt": {"host": "127.0.0.1" if local else group.host, "port": group.port,
                    "username": GROUP_HUB_USER, "password": password,
                    "tls_ca": str(group.ca_crt)},
           "subscribe": [all_nodes_up("+"), state_topic("+")]}
    write_file(group.hub_json, json.dumps(hub, indent=2) + "\n", SECRET)


def _check(group: Group) -> None:
    if not group.name.strip() or len(group.name) > 100:
        raise GroupError("--name: expected the group's name (1-100 characters)")
    if not (_is_ip(group.host) or _HOST.match(group.host)):
        raise GroupError(f"--host {group.host!r}: expected the host name or IP address the "
                         "campuses reach the group broker at")
    if not 1 <= group.port <= 65535:
        raise GroupError(f"--port {group.port}: expected 1-65535")
    if not _is_ip(group.bind):
        raise GroupError(f"--bind {group.bind!r}: expected an IP address (0.0.0.0 for all)")
    if not group.campuses:
        raise GroupError("--campus: give at least one campus (its site id)")
