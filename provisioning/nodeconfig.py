"""The node OS configuration of one node: hostapd, dnsmasq, nftables, sysctl
and the systemd units, rendered from the templates in ``firmware-config/node``.

``render_node(settings, out_dir)`` takes the node's JSON config (the same
document as /etc/rounds/node.json; keys this module does not know are
ignored) and writes the files into ``out_dir``. Every value that ends up in a
file is checked first, so a bad config is a ``NodeConfigError`` naming the
key, never a broken file (or a newline smuggled into a config line).

Keys used (defaults in brackets):

- ``node``: the node id (letters, digits, ``-``, ``_``), for comments.
- ``shape``: ``"ward"`` (the Pi's own radio runs hostapd) or ``"hall"`` (the
  hospital's access points carry the SSID on a VLAN and the node is that
  VLAN's gateway on a wired interface: no hostapd.conf) [``"ward"``].
- ``wifi.interface``: the interface phones arrive on: ``wlan0`` on a ward
  node, the VLAN interface (e.g. ``eth0.42``) on a hall node [``"wlan0"``].
- ``wifi.ssid`` (ward, required), ``wifi.psk`` (8-63 characters, or null for
  an open network) [null], ``wifi.country`` [``"CN"``], ``wifi.channel`` [6].
- ``network.address``: the node's address and prefix on the Wi-Fi
  [``"10.42.0.1/24"``].
- ``network.dhcp_range``: ``[first, last]`` [``["10.42.0.20", "10.42.0.250"]``].
- ``network.lease``: DHCP lease time in dnsmasq's syntax [``"15m"``].
- ``network.uplink``: ``"none"`` (phones reach only the node; every DNS name
  answers with the node's address) or ``"intranet"`` (released phones are
  forwarded and masqueraded to ``network.uplink_interface``, other names go
  to ``network.upstream_dns``) [``"none"``].
- ``network.uplink_interface`` [``"eth0"``], ``network.upstream_dns``
  (required with ``intranet``).
- ``network.portal_port``: where the unprivileged portal listens; phones'
  port 80 is redirected there by nftables [8080].
- ``network.lease_file`` [``/var/lib/rounds/dnsmasq.leases``] (give the
  portal the same path as ``portal.leases_file``), ``network.pid_file``
  [``/run/rounds-dnsmasq.pid``].
- ``portal.api_url``: the RFC 8908 API URI sent in DHCP option 114. Only
  ``https://`` (phones ignore anything else), and only set it when the node
  has a certificate phones trust; its host name is answered with the node's
  address and tcp/443 to the node is opened. Unset: no option 114.
  (``portal.url`` and ``portal.release_seconds`` belong to the portal.)
- ``install``: where things live on the node: ``venv``
  [``/opt/rounds/.venv``], ``config`` [``/etc/rounds/node.json``],
  ``config_dir`` [``/etc/rounds``], ``state_dir`` [``/var/lib/rounds``],
  ``user`` [``rounds``].

Where each rendered file goes on the node: ``destinations(settings)``.
"""

import ipaddress
import os
import re
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

TEMPLATES = Path(__file__).resolve().parent.parent / "firmware-config" / "node"

# What Apple, Android/Chrome, Windows and Firefox fetch or resolve to decide
# whether a network is captive (DESIGN.md, "What phones really do").
PROBE_NAMES = (
    "captive.apple.com", "www.apple.com", "www.appleiphonecell.com",
    "www.itools.info", "www.ibook.info", "www.airport.us", "www.thinkdifferent.us",
    "connectivitycheck.gstatic.com", "connectivitycheck.android.com",
    "clients1.google.com", "clients3.google.com", "www.google.cn",
    "connect.rom.miui.com", "connectivitycheck.platform.hicloud.com",
    "www.msftconnecttest.com", "www.msftncsi.com", "ipv6.msftconnecttest.com",
    "detectportal.firefox.com",
)
# Windows resolves this name and expects exactly this address.
NCSI_DNS = ("dns.msftncsi.com", "131.107.255.255")

UNITS = ("rounds-firewall.service", "rounds-dnsmasq.service", "rounds-portal.service",
         "rounds-presence.service", "rounds-sync.service", "rounds-gate.service")
# Only on a node with an HTTPS captive-portal API (``portal.api_url``).
TLS_UNIT = "rounds-portal-tls.service"
# Where the portal serves HTTPS; phones' tcp/443 reaches it through a redirect.
TLS_PORT = 8443

_HARDENING = """\
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={state_dir}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0027"""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_IFACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z")
_LEASE = re.compile(r"([1-9][0-9]*[smhdw]?|infinite)\Z")
_PATH = re.compile(r"/[A-Za-z0-9_./+-]*\Z")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")


class NodeConfigError(ValueError):
    """The node's config cannot make a valid node OS configuration."""


def render_node(settings: dict, out_dir) -> list[Path]:
    """Write the node OS configuration for ``settings`` into ``out_dir``.

    Returns the written paths: ``hostapd.conf`` (ward nodes only),
    ``dnsmasq.conf``, ``nftables.conf``, ``sysctl.conf`` and the systemd units
    in ``UNITS``. ``hostapd.conf`` holds the Wi-Fi passphrase and is written
    owner-only.
    """
    values = _values(settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    names = (["hostapd.conf"] if values["shape"] == "ward" else []) + [
        "dnsmasq.conf", "nftables.conf", "sysctl.conf", *_units(values)]
    for name in names:
        text = Template((TEMPLATES / f"{name}.tmpl").read_text()).substitute(values)
        path = out / name
        _write(path, text, 0o600 if name == "hostapd.conf" else 0o644)
        written.append(path)
    return written


def _units(values: dict) -> tuple[str, ...]:
    return UNITS + ((TLS_UNIT,) if values["api_url"] else ())


def destinations(settings: dict) -> dict[str, str]:
    """Where each rendered file is installed on the node."""
    values = _values(settings)
    config_dir = values["config_dir"]
    places = {
        "dnsmasq.conf": f"{config_dir}/dnsmasq.conf",
        "nftables.conf": f"{config_dir}/nftables.conf",
        "sysctl.conf": "/etc/sysctl.d/90-rounds.conf",
        **{unit: f"/etc/systemd/system/{unit}" for unit in _units(values)},
    }
    if values["shape"] == "ward":  # run by Debian's hostapd@<interface>.service
        places["hostapd.conf"] = f"/etc/hostapd/{values['wifi_interface']}.conf"
    return places


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)


# --- checking and deriving the template values --------------------------------

def _values(settings: dict) -> dict:
    wifi = _section(settings, "wifi")
    net = _section(settings, "network")
    portal = _section(settings, "portal")
    install = _section(settings, "install")

    node = settings.get("node")
    if not isinstance(node, str) or not _NAME.match(node):
        raise NodeConfigError(f"node: expected a node id (letters, digits, - and _), got {node!r}")
    shape = settings.get("shape", "ward")
    if shape not in ("ward", "hall"):
        raise NodeConfigError(f"shape: expected 'ward' or 'hall', got {shape!r}")

    wifi_if = _iface(wifi.get("interface", "wlan0"), "wifi.interface")
    address = _address(net.get("address", "10.42.0.1/24"))
    node_ip, subnet = address.ip, address.network
    first, last = _dhcp_range(net.get("dhcp_range", ["10.42.0.20", "10.42.0.250"]), address)
    lease = str(net.get("lease", "15m"))
    if not _LEASE.match(lease):
        raise NodeConfigError(f"network.lease: expected e.g. '15m' or '900', got {lease!r}")
    uplink = net.get("uplink", "none")
    if uplink not in ("none", "intranet"):
        raise NodeConfigError(f"network.uplink: expected 'none' or 'intranet', got {uplink!r}")
    uplink_if = _iface(net.get("uplink_interface", "eth0"), "network.uplink_interface")
    if uplink == "intranet" and uplink_if == wifi_if:
        raise NodeConfigError("network.uplink_interface must differ from wifi.interface")
    port = net.get("portal_port", 8080)
    if not isinstance(port, int) or isinstance(port, bool) or not 1024 <= port <= 65535:
        raise NodeConfigError(
            f"network.portal_port: expected an unprivileged port (1024-65535), got {port!r}")

    api_url, api_host = _api_url(portal.get("api_url"))

    values = {
        "node": node, "shape": shape, "uplink": uplink,
        "wifi_interface": wifi_if, "uplink_interface": uplink_if,
        "node_ip": str(node_ip), "subnet": str(subnet), "netmask": str(subnet.netmask),
        "dhcp_start": str(first), "dhcp_end": str(last), "lease": lease,
        "portal_port": port,
        "lease_file": _path(net.get("lease_file", "/var/lib/rounds/dnsmasq.leases"),
                            "network.lease_file"),
        "pid_file": _path(net.get("pid_file", "/run/rounds-dnsmasq.pid"), "network.pid_file"),
        "venv": _path(install.get("venv", "/opt/rounds/.venv"), "install.venv"),
        "config": _path(install.get("config", "/etc/rounds/node.json"), "install.config"),
        "config_dir": _path(install.get("config_dir", "/etc/rounds"), "install.config_dir"),
        "state_dir": _path(install.get("state_dir", "/var/lib/rounds"), "install.state_dir"),
        "user": install.get("user", "rounds"),
        "ip_forward": 1 if uplink == "intranet" else 0,
        "api_url": api_url or "", "tls_port": TLS_PORT,
    }
    if not isinstance(values["user"], str) or not _NAME.match(values["user"]):
        raise NodeConfigError(f"install.user: expected a user name, got {values['user']!r}")
    values["group"] = values["user"]
    values["hardening"] = _HARDENING.format(state_dir=values["state_dir"])
    values.update(_wifi(wifi, shape))
    values.update(_dns(net, uplink, str(node_ip), api_url, api_host))
    values.update(_firewall(uplink, wifi_if, uplink_if, str(subnet), api_url, str(node_ip)))
    return values


def _section(settings: dict, key: str) -> dict:
    value = settings.get(key) or {}
    if not isinstance(value, dict):
        raise NodeConfigError(f"{key}: expected an object, got {value!r}")
    return value


def _iface(name, key: str) -> str:
    if not isinstance(name, str) or not _IFACE.match(name):
        raise NodeConfigError(f"{key}: expected a network interface name (at most 15 "
                              f"letters, digits, '.', '-', '_'), got {name!r}")
    return name


def _path(path, key: str) -> str:
    if not isinstance(path, str) or not _PATH.match(path):
        raise NodeConfigError(f"{key}: expected an absolute path without spaces, got {path!r}")
    return path


def _address(text) -> ipaddress.IPv4Interface:
    try:
        address = ipaddress.IPv4Interface(text)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
        raise NodeConfigError(
            f"network.address: expected an IPv4 address with prefix like "
            f"'10.42.0.1/24', got {text!r}") from None
    if address.network.prefixlen > 29 or address.ip in (address.network.network_address,
                                                         address.network.broadcast_address):
        raise NodeConfigError(f"network.address: {text} leaves no room for phones")
    return address


def _dhcp_range(pair, address: ipaddress.IPv4Interface):
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise NodeConfigError(f"network.dhcp_range: expected [first, last], got {pair!r}")
    try:
        first, last = (ipaddress.IPv4Address(p) for p in pair)
    except (ipaddress.AddressValueError, ValueError):
        raise NodeConfigError(f"network.dhcp_range: not IPv4 addresses: {pair!r}") from None
    hosts = address.network
    if not (first in hosts and last in hosts and first <= last):
        raise NodeConfigError(f"network.dhcp_range: {first}-{last} is not a range inside {hosts}")
    if first <= address.ip <= last:
        raise NodeConfigError(f"network.dhcp_range: {first}-{last} contains the node's own "
                              f"address {address.ip}")
    return first, last


def _api_url(url):
    if url in (None, ""):
        return None, None
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise NodeConfigError(
            f"portal.api_url: phones accept the captive-portal API (DHCP option 114) "
            f"only over https://, got {url!r}")
    if any(c.isspace() or c in '"\\' or ord(c) < 32 or ord(c) == 127 for c in url):
        raise NodeConfigError(f"portal.api_url: spaces, quotes and control characters "
                              f"are not allowed: {url!r}")
    host = parts.hostname
    if not _HOST.match(host):
        raise NodeConfigError(f"portal.api_url: bad host name {host!r}")
    return url, host


def _wifi(wifi: dict, shape: str) -> dict:
    if shape != "ward":  # hall: the hospital's access points carry the SSID
        return {"ssid": "", "country": "", "channel": "", "security": ""}
    ssid = wifi.get("ssid")
    if (not isinstance(ssid, str) or not ssid or len(ssid.encode()) > 32
            or any(ord(c) < 32 or ord(c) == 127 for c in ssid)):
        raise NodeConfigError(f"wifi.ssid: expected 1-32 bytes of text without control "
                              f"characters, got {ssid!r}")
    country = wifi.get("country", "CN")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise NodeConfigError(f"wifi.country: expected an ISO 3166 code like 'CN', got {country!r}")
    channel = wifi.get("channel", 6)
    if not isinstance(channel, int) or isinstance(channel, bool) or not 1 <= channel <= 13:
        raise NodeConfigError(f"wifi.channel: expected a 2.4 GHz channel 1-13, got {channel!r}")
    psk = wifi.get("psk")
    if psk is None:
        security = "# Open network (site choice): no WPA."
    else:
        if not isinstance(psk, str) or not 8 <= len(psk) <= 63 or any(
                not 32 <= ord(c) <= 126 for c in psk):
            raise NodeConfigError("wifi.psk: a WPA2 passphrase is 8-63 printable ASCII "
                                  "characters (or null for an open network)")
        security = "\n".join(["# WPA2-Personal (site choice).", "wpa=2",
                              "wpa_key_mgmt=WPA-PSK", "rsn_pairwise=CCMP",
                              f"wpa_passphrase={psk}"])
    return {"ssid": ssid, "country": country, "channel": channel, "security": security}


def _dns(net: dict, uplink: str, node_ip: str, api_url, api_host) -> dict:
    # local=/name/ next to address=: the name's AAAA is answered here (empty)
    # instead of being forwarded (dnsmasq >= 2.86 forwards the other types).
    probe = [line for name in PROBE_NAMES
             for line in (f"local=/{name}/", f"address=/{name}/{node_ip}")]
    probe += [f"local=/{NCSI_DNS[0]}/", f"address=/{NCSI_DNS[0]}/{NCSI_DNS[1]}"]
    if api_host and not _is_ip(api_host):
        probe += ["# The captive-portal API's host name is served by this node.",
                  f"local=/{api_host}/", f"address=/{api_host}/{node_ip}"]
    if uplink == "none":
        rest = ["# uplink = none: every other name is the node too.",
                "no-resolv", "local=/#/", f"address=/#/{node_ip}"]
    else:
        upstream = net.get("upstream_dns")
        if not isinstance(upstream, str) or not _is_ip(upstream):
            raise NodeConfigError("network.upstream_dns: uplink = intranet needs the IP "
                                  f"address of the hospital's DNS server, got {upstream!r}")
        rest = ["# uplink = intranet: other names are resolved by the hospital's DNS.",
                "no-resolv", f"server={upstream}"]
    if api_url:
        option = "\n".join([
            "# RFC 8910: the RFC 8908 captive-portal API. Phones use it only over",
            "# HTTPS with a certificate they trust, so it is sent only when the node",
            "# has one. Numeric form: the named one needs a recent dnsmasq.",
            f'dhcp-option=114,"{api_url}"'])
    else:
        option = "# No DHCP option 114: this node has no portal.api_url (needs HTTPS)."
    return {"probe_names": "\n".join(probe), "dns_rest": "\n".join(rest), "option_114": option}


def _firewall(uplink: str, wifi_if: str, uplink_if: str, subnet: str, api_url,
              node_ip: str) -> dict:
    if api_url:
        tls = (f'\t\ttcp dport {TLS_PORT} accept comment '
               f'"captive-portal API (HTTPS; 443 arrives through the redirect)"')
        tls_redirect = (f'\t\tiifname "{wifi_if}" ip daddr {node_ip} tcp dport 443 '
                        f'redirect to :{TLS_PORT}')
    else:
        tls = "\t\t# no tcp/443: no captive-portal API on this node"
        tls_redirect = "\t\t# no HTTPS: this node has no captive-portal API (portal.api_url)"
    if uplink == "intranet":
        forward = f'\t\tiifname "{wifi_if}" oifname "{uplink_if}" accept'
        postrouting = "\n".join([
            "",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f'\t\tip saddr {subnet} oifname "{uplink_if}" masquerade',
            "\t}",
        ])
    else:
        forward = "\t\t# uplink = none: released phones reach only the node."
        postrouting = ""
    return {"tls_rule": tls, "tls_redirect": tls_redirect, "forward_rule": forward,
            "postrouting": postrouting}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
