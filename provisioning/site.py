"""A site: its directory, and ``site init`` (``rounds-provision site init``).

The site directory (default ``/etc/rounds/site``) holds::

    site.json           0644  what site init was given (id, name, hub host, port, ...)
    site_secret         0600  32 random bytes, hex: the key of the device HMACs
    hub.json            0600  the hub's config (rounds-hub --config), with its MQTT password
    ca/ca.key           0600  the site CA's private key (never leaves this directory)
    ca/ca.crt           0644  the site CA; every node and the hub trust it
    broker/             0700  what Mosquitto reads (owned by --broker-user):
      mosquitto.conf    0644  TLS listener, no anonymous, password file, ACL, pid file
      passwd            0600  user:$7$ hash lines (hub and nodes)
      acl               0600  the hub's block and one block per node
      ca.crt, server.crt 0644 / server.key 0600   the broker's TLS
      data/             0700  persistence; mosquitto.pid
    nodes/<node>.json   0600  each node's settings (no MQTT password)
    bundles/<node>/, bundles/<node>.tar.gz       what goes on the node's SD card

Every directory is 0700; when the broker runs as another account
(``--broker-user``), ``broker/`` is handed to it and the site directory is
0711 so that account can reach it (it still cannot list or read the rest).

``init_site`` is idempotent: on a site that already has everything with
the same parameters it writes nothing. ``force=True`` regenerates the CA,
the broker's key and certificate, the hub's MQTT password, hub.json and
the broker's config and ACL; it keeps the site secret (a new one would
orphan every phone binding: device ids are HMACs of it) unless
``new_secret=True``, and keeps the nodes' credentials. After a forced run
every node needs a new bundle (``node add <node> --force``): its copy of the
CA is no longer the site's.
"""

import getpass
import ipaddress
import json
import os
import pwd
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import ProvisioningError
from .broker import (format_passwords, ingest_worker_user, is_ingest_worker, password_hash,
                     read_passwords, reload, render_acl, render_conf)
from .files import DIR, PUBLIC, SECRET, ensure_dir, write_file
from .pki import make_ca, make_server_cert

HUB_USER = "hub"
SITE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
DEFAULTS = {"mqtt_port": 8883, "bind": "0.0.0.0", "hub_db": "/var/lib/rounds/hub.db",
            "timezone": "Asia/Shanghai", "broker_user": None}


class SiteError(ProvisioningError):
    """The site directory is missing, incomplete, or does not match the request."""


class BrokerLayout:
    """Where a site's and a hospital group's directories (``dir``) keep their CA
    and their broker's files."""

    dir: Path

    @property
    def ca_key(self) -> Path: return self.dir / "ca" / "ca.key"
    @property
    def ca_crt(self) -> Path: return self.dir / "ca" / "ca.crt"
    @property
    def broker_dir(self) -> Path: return self.dir / "broker"
    @property
    def broker_conf(self) -> Path: return self.broker_dir / "mosquitto.conf"
    @property
    def passwd(self) -> Path: return self.broker_dir / "passwd"
    @property
    def data_dir(self) -> Path: return self.broker_dir / "data"
    @property
    def pid_file(self) -> Path: return self.data_dir / "mosquitto.pid"


@dataclass(frozen=True)
class Site(BrokerLayout):
    """What ``site init`` was given (site.json), and where things are."""

    dir: Path = field(compare=False)
    site: str
    name: str
    hub_host: str
    mqtt_port: int
    bind: str
    hub_db: str
    timezone: str
    broker_user: str

    # --- paths ---
    @property
    def site_json(self) -> Path: return self.dir / "site.json"
    @property
    def secret_file(self) -> Path: return self.dir / "site_secret"
    @property
    def hub_json(self) -> Path: return self.dir / "hub.json"
    @property
    def acl(self) -> Path: return self.broker_dir / "acl"
    @property
    def broker_ca(self) -> Path: return self.broker_dir / "ca.crt"
    @property
    def server_crt(self) -> Path: return self.broker_dir / "server.crt"
    @property
    def server_key(self) -> Path: return self.broker_dir / "server.key"
    @property
    def bridge_dir(self) -> Path:
        """The hospital group bridge's config (``site bridge``), read by absolute path."""
        return self.broker_dir.absolute() / "bridge.d"
    @property
    def nodes_dir(self) -> Path: return self.dir / "nodes"
    @property
    def bundles_dir(self) -> Path: return self.dir / "bundles"

    def files(self) -> list[Path]:
        """The files site init makes (all must exist on an initialised site)."""
        return [self.secret_file, self.hub_json, self.ca_key, self.ca_crt, self.broker_conf,
                self.passwd, self.acl, self.broker_ca, self.server_crt, self.server_key,
                self.site_json]

    def broker_owner(self) -> tuple[int, int] | None:
        """(uid, gid) for the broker's files when that is not us, else None."""
        entry = _account(self.broker_user)
        if (entry.pw_uid, entry.pw_gid) == (os.geteuid(), os.getegid()):
            return None
        return entry.pw_uid, entry.pw_gid

    def secret(self) -> str:
        return self.secret_file.read_text().strip()

    def hub_config(self) -> dict:
        try:
            return json.loads(self.hub_json.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SiteError(f"cannot read the hub config {self.hub_json}: {exc}") from None

    def hub_db_path(self) -> str:
        """The hub database named by the site's hub config (hub.json ``db``)."""
        return self.hub_config()["db"]

    def record(self) -> dict:
        data = asdict(self)
        del data["dir"]
        return data


def load_site(site_dir) -> Site:
    site_dir = Path(site_dir)
    try:
        data = json.loads((site_dir / "site.json").read_text())
    except FileNotFoundError:
        raise SiteError(f"no site in {site_dir}: run `rounds-provision site init` first "
                        "(or give --site-dir / ROUNDS_SITE_DIR)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SiteError(f"cannot read {site_dir / 'site.json'}: {exc}") from None
    try:
        return Site(dir=site_dir, **data)
    except TypeError:
        raise SiteError(f"{site_dir / 'site.json'} is not a site record written by "
                        "`rounds-provision site init`") from None


@dataclass
class InitResult:
    site: Site
    changed: bool
    written: list[Path]
    kept_secret: bool = False
    regenerated: bool = False  # an existing site's CA and certificate were replaced
    nodes: list[str] = field(default_factory=list)  # that need a new bundle after --force
    reload: str | None = None  # what reloading the broker did, when it was


def init_site(site_dir, *, site: str, name: str, hub_host: str, mqtt_port: int | None = None,
              bind: str | None = None, hub_db: str | None = None, timezone: str | None = None,
              broker_user: str | None = None, force: bool = False, new_secret: bool = False,
              ingest_workers: int | None = None, step=lambda message: None) -> InitResult:
    """Make (or, unchanged, leave) the site in ``site_dir``. Options left None
    take the existing site's value, else ``DEFAULTS``. ``ingest_workers``:
    MQTT users for that many ``rounds-hub ingest --workers`` (``add_ingest_workers``)."""
    site_dir = Path(site_dir).absolute()
    existing = load_site(site_dir) if (site_dir / "site.json").exists() else None
    base = existing.record() if existing else DEFAULTS
    wanted = Site(
        dir=site_dir, site=site, name=name, hub_host=hub_host,
        mqtt_port=mqtt_port if mqtt_port is not None else base["mqtt_port"],
        bind=bind or base["bind"],
        hub_db=str(Path(hub_db).absolute()) if hub_db else base["hub_db"],
        timezone=timezone or base["timezone"],
        broker_user=broker_user or base["broker_user"] or getpass.getuser())
    _check(wanted)
    if wanted.broker_owner() and os.geteuid() != 0:
        raise SiteError(f"--broker-user {wanted.broker_user}: handing the broker's files to "
                        "another account needs root")
    if ingest_workers is not None and not 1 <= ingest_workers <= MAX_INGEST_WORKERS:
        raise SiteError(f"--ingest-workers {ingest_workers}: expected 1-{MAX_INGEST_WORKERS}")
    if existing and not force:
        unchanged = _unchanged(existing, wanted)
        if (ingest_workers or 1) > _ingest_workers(existing):
            return add_ingest_workers(existing, ingest_workers, step)
        return unchanged
    return _write_site(wanted, existing, new_secret=new_secret or not existing, step=step,
                       ingest_workers=ingest_workers)


def _unchanged(existing: Site, wanted: Site) -> InitResult:
    if existing != wanted:
        differ = [f"{key} is {old!r}, not {new!r}" for key, old, new in
                  ((k, v, wanted.record()[k]) for k, v in existing.record().items())
                  if old != new]
        raise SiteError(f"{existing.dir} already holds site {existing.site!r} and "
                        f"{'; '.join(differ)}. Nothing changed; give --force to regenerate "
                        "its CA, broker certificate and hub credentials with the new values.")
    missing = [str(path) for path in existing.files() if not path.exists()]
    if missing:
        raise SiteError(f"site {existing.site!r} in {existing.dir} lacks {', '.join(missing)}. "
                        "Nothing changed; give --force to regenerate the site's files.")
    return InitResult(existing, changed=False, written=[])


def _write_site(site: Site, existing: Site | None, *, new_secret: bool, step,
                ingest_workers: int | None = None) -> InitResult:
    owner = site.broker_owner()
    ensure_dir(site.dir, 0o711 if owner else DIR)
    for directory in (site.dir / "ca", site.nodes_dir, site.bundles_dir):
        ensure_dir(directory)
    for directory in (site.broker_dir, site.data_dir):
        ensure_dir(directory, DIR, owner)
    written = []

    def write(path, data, mode, owner=None):
        written.append(write_file(path, data, mode, owner))

    kept = not new_secret and site.secret_file.exists()
    if kept:
        step("site secret: kept (phones stay bound)")
    else:
        step("site secret: new (32 random bytes)")
        write(site.secret_file, secrets.token_hex(32) + "\n", SECRET)

    step("certificate authority: new EC P-256 key, 10 years")
    ca_key, ca_crt = make_ca(site.site, site.name)
    write(site.ca_key, ca_key, SECRET)
    write(site.ca_crt, ca_crt, PUBLIC)
    names = ", ".join(dict.fromkeys((site.hub_host, "localhost", "127.0.0.1")))
    step(f"broker certificate for {names}")
    server_key, server_crt = make_server_cert(ca_key, ca_crt, site.hub_host)
    write(site.server_key, server_key, SECRET, owner)
    write(site.server_crt, server_crt, PUBLIC, owner)
    write(site.broker_ca, ca_crt, PUBLIC, owner)

    step("hub MQTT credentials and hub config")
    hub_password = secrets.token_urlsafe(24)
    users = read_passwords(site.passwd)
    users[HUB_USER] = password_hash(hub_password)
    mqtt = _hub_mqtt(existing) if existing else {}
    count = max(ingest_workers or 1, len(mqtt.get("workers", [])) + 1)
    for user in [user for user in users if is_ingest_worker(user, HUB_USER)]:
        del users[user]  # all made anew, as the hub's
    workers = _new_ingest_workers(users, range(2, count + 1))
    nodes = [user for user in users if user != HUB_USER]
    write(site.passwd, format_passwords(users), SECRET, owner)
    write(site.acl, render_acl(site.site, HUB_USER, nodes), SECRET, owner)
    write(site.hub_json, json.dumps(hub_config(site, hub_password, workers,
                                               mqtt.get("share_group")), indent=2) + "\n",
          SECRET)

    step(f"broker config: TLS on {site.bind}:{site.mqtt_port}, no anonymous clients")
    conf = render_conf(site=site.site, port=site.mqtt_port, bind=site.bind,
                       password_file=site.passwd, acl_file=site.acl, data_dir=site.data_dir,
                       run_as=site.broker_user, pid_file=site.pid_file,
                       tls={"cafile": site.broker_ca, "certfile": site.server_crt,
                            "keyfile": site.server_key}, username_as_clientid=True,
                       # a group bridge made by `site bridge` outlives a --force
                       include_dir=site.bridge_dir if any(site.bridge_dir.glob("*.conf")) else None)
    write(site.broker_conf, conf, PUBLIC, owner)
    # Last: a site.json means a complete site (an interrupted run is re-done).
    write(site.site_json, json.dumps(site.record(), indent=2) + "\n", PUBLIC)
    registered = sorted(p.stem for p in site.nodes_dir.glob("*.json")) if existing else []
    return InitResult(site, changed=True, written=written, kept_secret=kept,
                      regenerated=existing is not None, nodes=registered)


def hub_config(site: Site, hub_password: str, workers=(), share_group=None) -> dict:
    """hub.json as ``rounds-hub`` reads it. The hub's ingest runs beside the
    broker, so it connects locally (the certificate names 127.0.0.1) unless
    the broker listens on one address only. ``workers``: the credentials of
    ingest workers 2..N (``mqtt.workers``), with the group of their shared
    subscription (``mqtt.share_group``, kept once made: hub/ingest/workers.py
    says why it is random)."""
    local = site.bind in ("0.0.0.0", "::", "127.0.0.1", "localhost")
    mqtt = {"host": "127.0.0.1" if local else site.hub_host, "port": site.mqtt_port,
            "username": HUB_USER, "password": hub_password, "tls_ca": str(site.ca_crt)}
    if workers:
        mqtt["share_group"] = share_group or _new_share_group()
        mqtt["workers"] = list(workers)
    return {"site": site.site, "db": site.hub_db, "timezone": site.timezone, "mqtt": mqtt}


# --- ingest workers (rounds-hub ingest --workers N) ---------------------------------

MAX_INGEST_WORKERS = 32


def _hub_mqtt(site: Site) -> dict:
    """hub.json's ``mqtt`` section, or {} when it cannot be read (--force mends it)."""
    try:
        return site.hub_config().get("mqtt") or {}
    except SiteError:
        return {}


def _ingest_workers(site: Site) -> int:
    """How many ingest workers the site has MQTT users for (the hub's is 1)."""
    return len(_hub_mqtt(site).get("workers", [])) + 1


def _new_share_group() -> str:
    return f"rounds-ingest-{secrets.token_hex(16)}"


def _new_ingest_workers(users: dict[str, str], indexes) -> list[dict]:
    """New passwords for the ingest workers ``indexes`` (2, 3, ...): their
    hashes into ``users``, their credentials for hub.json."""
    workers = []
    for index in indexes:
        user, password = ingest_worker_user(HUB_USER, index), secrets.token_urlsafe(24)
        users[user] = password_hash(password)
        workers.append({"username": user, "password": password})
    return workers


def add_ingest_workers(site: Site, count: int, step) -> InitResult:
    """MQTT users for ingest workers up to ``count`` on an initialised site,
    leaving everything else (and the workers it has) as it is: their
    password lines, their ACL blocks, hub.json's ``mqtt.workers``; then
    reloads the broker. It never removes one: run ``rounds-hub ingest
    --workers`` with fewer, and the ingest ends the others' broker sessions
    (which needs their credentials)."""
    have = _ingest_workers(site)
    step(f"ingest workers {have + 1}-{count}: MQTT users "
         f"{', '.join(ingest_worker_user(HUB_USER, i) for i in range(have + 1, count + 1))}")
    owner = site.broker_owner()
    users = read_passwords(site.passwd)
    config = site.hub_config()
    mqtt = config["mqtt"]
    mqtt["workers"] = mqtt.get("workers", []) + _new_ingest_workers(
        users, range(have + 1, count + 1))
    mqtt["share_group"] = mqtt.get("share_group") or _new_share_group()
    written = [write_file(site.passwd, format_passwords(users), SECRET, owner),
               write_file(site.acl, render_acl(site.site, HUB_USER,
                                               [u for u in users if u != HUB_USER]),
                          SECRET, owner),
               write_file(site.hub_json, json.dumps(config, indent=2) + "\n", SECRET)]
    step("reloading the broker")
    return InitResult(site, changed=True, written=written,
                      reload=reload(site.pid_file).message)


def _check(site: Site) -> None:
    if not SITE_ID.match(site.site):
        raise SiteError(f"--site {site.site!r}: expected a slug (lower-case letters, digits, "
                        "- and _, at most 64), it becomes part of every MQTT topic")
    if not site.name.strip() or len(site.name) > 100:
        raise SiteError("--name: expected the site's name (1-100 characters)")
    if not (_is_ip(site.hub_host) or _HOST.match(site.hub_host)):
        raise SiteError(f"--hub-host {site.hub_host!r}: expected the host name or IP address "
                        "nodes reach the hub's broker at")
    if not 1 <= site.mqtt_port <= 65535:
        raise SiteError(f"--mqtt-port {site.mqtt_port}: expected 1-65535")
    if not _is_ip(site.bind):
        raise SiteError(f"--bind {site.bind!r}: expected an IP address (0.0.0.0 for all)")
    try:
        ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SiteError(f"--timezone {site.timezone!r}: not a time zone name "
                        "(e.g. Asia/Shanghai)") from None
    _account(site.broker_user)


def _account(user: str):
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise SiteError(f"--broker-user {user!r}: no such account on this machine") from None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
