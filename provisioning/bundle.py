"""A node's bundle: everything that goes onto its SD card, as a directory and
a ``.tar.gz`` with the same files and modes::

    <node>/
      node.json          0600  the node config with its secrets -> /etc/rounds/node.json
      ca.crt             0644  the site CA                      -> /etc/rounds/ca.crt
      config/            the rendered firmware-config (nodeconfig.render_node);
                         hostapd.conf (ward nodes) 0600, the rest 0644
      first-boot.sh      0755  installs and starts it all on Raspberry Pi OS
      cmdline-hook.txt   0644  what to add to cmdline.txt so the first boot runs it
                               (the bundle is copied to the boot partition as <node>/)
      label.png, label.pdf, enrolment.json   0644  the box's label and its QR data
      requirements.lock  0644  the versions (with hashes) first-boot.sh installs:
                               requirements/runtime.lock, what the tests ran with
      wheels/            0644  Rounds and its dependencies, when given (--wheels)
"""

import json
import shutil
import tarfile
from pathlib import Path

from .files import DIR, PUBLIC, SCRIPT, SECRET, ensure_dir, write_file
from .firstboot import render_first_boot
from .label import enrolment_data, enrolment_text, write_label
from .nodeconfig import destinations, render_node
from .pki import fingerprint

# What make installs the tests with, minus the test tools (same versions:
# tests/test_lock.py); make lock refreshes it.
RUNTIME_LOCK = Path(__file__).resolve().parent.parent / "requirements" / "runtime.lock"
INSTALL_DEFAULTS = {"venv": "/opt/rounds/.venv", "config": "/etc/rounds/node.json",
                    "config_dir": "/etc/rounds", "state_dir": "/var/lib/rounds",
                    "user": "rounds"}
LEASE_FILE = "/var/lib/rounds/dnsmasq.leases"
# Appended to the boot partition's cmdline.txt: the first boot runs
# "first-boot.sh --arm" (systemd.run passes no arguments, so the script arms
# itself when it finds its hook on the kernel command line).
CMDLINE_HOOK = ("systemd.run=/boot/firmware/{node}/first-boot.sh "
                "systemd.run_success_action=reboot systemd.unit=kernel-command-line.target")


def node_config(site, settings: dict, password: str) -> dict:
    """The node's JSON config (what ``rounds-edge`` reads), secrets included."""
    install = {**INSTALL_DEFAULTS, **(settings.get("install") or {})}
    network = dict(settings.get("network") or {})
    network.setdefault("lease_file", LEASE_FILE)
    return {
        "site": site.site, "node": settings["node"], "zone": settings["zone"],
        "db": f"{install['state_dir']}/node.db",
        "site_secret": site.secret(), "timezone": site.timezone,
        "shape": settings.get("shape", "ward"),
        "wifi": settings.get("wifi") or {}, "network": network,
        # The portal finds phones' MACs in the lease file dnsmasq writes.
        "portal": {"leases_file": network["lease_file"], **(settings.get("portal") or {})},
        "mqtt": {"host": site.hub_host, "port": site.mqtt_port, "username": settings["node"],
                 "password": password, "tls_ca": f"{install['config_dir']}/ca.crt"},
        "install": install,
    }


def build_bundle(site, settings: dict, password: str, out: Path, *, zone_name: str,
                 pip_index: str | None = None, wheels: Path | None = None) -> list[Path]:
    """Write the bundle of the node ``settings`` describe into ``out``."""
    out = ensure_dir(out)
    config = node_config(site, settings, password)
    rendered = render_node(config, ensure_dir(out / "config"))  # NodeConfigError first
    places = destinations(config)
    install = config["install"]
    write_file(out / "node.json", json.dumps(config, indent=2) + "\n", SECRET)
    ca = site.ca_crt.read_bytes()
    write_file(out / "ca.crt", ca, PUBLIC)

    group = install["user"]
    files = [(f"config/{path.name}", places[path.name],
              "0600" if path.name == "hostapd.conf" else "0644", "root") for path in rendered]
    files += [("node.json", install["config"], "0640", group),
              ("ca.crt", config["mqtt"]["tls_ca"], "0644", "root")]
    units = [path.name for path in rendered if path.suffix == ".service"]
    if config["shape"] == "ward":
        units.append(f"hostapd@{config['wifi'].get('interface', 'wlan0')}.service")
    secrets = ["node.json"] + [f"config/{p.name}" for p in rendered if p.name == "hostapd.conf"]
    write_file(out / "first-boot.sh", render_first_boot(
        config, files=files, units=units, secrets=secrets, pip_index=pip_index), SCRIPT)
    write_file(out / "requirements.lock", RUNTIME_LOCK.read_bytes(), PUBLIC)
    write_file(out / "cmdline-hook.txt", CMDLINE_HOOK.format(node=settings["node"]) + "\n",
               PUBLIC)

    data = enrolment_data(site=site.site, node=settings["node"], zone=settings["zone"],
                          hub_host=site.hub_host, mqtt_port=site.mqtt_port,
                          ca_sha256=fingerprint(ca))
    write_file(out / "enrolment.json", enrolment_text(data) + "\n", PUBLIC)
    write_label(out / "label.png", out / "label.pdf", data, zone_name=zone_name,
                site_name=site.name)
    for name in ("label.png", "label.pdf"):
        (out / name).chmod(PUBLIC)
    if wheels:
        wheel_dir = ensure_dir(out / "wheels")
        for wheel in sorted(Path(wheels).glob("*.whl")):
            write_file(wheel_dir / wheel.name, wheel.read_bytes(), PUBLIC)
    return sorted(path for path in out.rglob("*") if path.is_file())


def pack(bundle: Path, tarball: Path, arcname: str) -> Path:
    """``bundle`` as ``tarball`` (0600: it holds secrets), entries under
    ``arcname/`` with their modes, owned by root."""
    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    tmp = tarball.with_name(f".{tarball.name}.tmp")
    tmp.unlink(missing_ok=True)
    with open(_private(tmp), "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(bundle, arcname=arcname, recursive=False, filter=owned_by_root)
        for path in sorted(bundle.rglob("*")):
            tar.add(path, arcname=f"{arcname}/{path.relative_to(bundle)}", recursive=False,
                    filter=owned_by_root)
    tmp.replace(tarball)
    return tarball


def install(staging: Path, bundle: Path) -> None:
    """Put a finished staging directory in place of ``bundle``."""
    if bundle.exists():
        shutil.rmtree(bundle)
    staging.replace(bundle)
    bundle.chmod(DIR)


def _private(path: Path) -> Path:
    path.touch(SECRET)
    path.chmod(SECRET)
    return path
