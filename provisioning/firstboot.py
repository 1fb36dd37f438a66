"""A node's first-boot script, rendered from
``firmware-config/node/first-boot.sh.tmpl``.

The template is bash, so its placeholders are ``@@{name}`` (``$`` belongs to
bash). Every value is shell-quoted here; the paths and names in it were
already checked by ``nodeconfig`` (no spaces, no quotes).
"""

import ipaddress
import re
import shlex
from importlib.metadata import version
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parent.parent / "firmware-config" / "node" / \
    "first-boot.sh.tmpl"
# Debian / Raspberry Pi OS packages. dnsmasq-base, not dnsmasq: the node runs
# its own rounds-dnsmasq.service, and the dnsmasq package would start a
# second, system-wide dnsmasq on port 53.
PACKAGES = ("dnsmasq-base", "nftables", "python3-venv", "libpcap0.8")
WARD_PACKAGES = ("hostapd",)


class _Script(Template):
    delimiter = "@@"


def render_first_boot(settings: dict, *, files: list[tuple[str, str, str, str]],
                      units: list[str], secrets: list[str], pip_index: str | None) -> str:
    """``files``: (bundle path, destination, mode, group); ``units``: what to
    enable and start; ``secrets``: bundle paths removed from the boot
    partition once installed."""
    install = settings.get("install") or {}
    ward = settings.get("shape", "ward") == "ward"
    address = ipaddress.IPv4Interface((settings.get("network") or {}).get("address",
                                                                          "10.42.0.1/24"))
    packages = (*(WARD_PACKAGES if ward else ()), *PACKAGES)
    q = shlex.quote
    return _Script(TEMPLATE.read_text()).substitute(
        node=q(settings["node"]), site=_comment(settings["site"]),
        zone=_comment(settings["zone"]),
        shape="ward" if ward else "hall",
        wifi_interface=q((settings.get("wifi") or {}).get("interface", "wlan0")),
        node_address=q(str(address)),
        user=q(install.get("user", "rounds")),
        state_dir=q(install.get("state_dir", "/var/lib/rounds")),
        config_dir=q(install.get("config_dir", "/etc/rounds")),
        venv=q(install.get("venv", "/opt/rounds/.venv")),
        pip_index=q(pip_index or ""),
        version=version("rounds"),
        packages=" ".join(q(p) for p in packages),
        units=" ".join(q(u) for u in units),
        files="\n".join("    " + q("|".join(entry)) for entry in files),
        secrets=" ".join(q(s) for s in secrets),
    )


def _comment(text: str) -> str:
    """``text`` safe inside a bash comment line (ids are slugs anyway)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "?", str(text))
