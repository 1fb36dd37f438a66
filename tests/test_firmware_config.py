"""The node OS configuration rendered by provisioning/nodeconfig.py, each file
checked by its own tool: ``nft -c -f`` in a fresh network namespace holding
the interfaces the ruleset names, ``dnsmasq --test``, ``systemd-analyze
verify``; hostapd.conf (no offline checker) by its keys."""

import re
import shutil
import sys
from pathlib import Path

import pytest

from provisioning.nodeconfig import (NCSI_DNS, TLS_UNIT, NodeConfigError, destinations,
                                     render_node)

from .netns import Netns, missing_tools, sh, veth

API_URL = "https://portal.rounds.test/api/captive"
VENV = Path(sys.prefix)  # a venv whose bin/rounds-edge exists, for systemd-analyze


def settings(shape="ward", psk=None, uplink="none", api_url=API_URL, **network):
    wifi = ({"interface": "wlan0", "ssid": "Rounds-Staff", "psk": psk, "country": "CN",
             "channel": 6} if shape == "ward" else {"interface": "eth0.42"})
    return {
        "node": "n1", "zone": "ward-3", "shape": shape, "wifi": wifi,
        "network": {"address": "10.42.0.1/24", "dhcp_range": ["10.42.0.20", "10.42.0.250"],
                    "lease": "15m", "uplink": uplink, "uplink_interface": "eth0",
                    "portal_port": 8080,
                    **({"upstream_dns": "192.0.2.53"} if uplink == "intranet" else {}),
                    **network},
        "portal": {"url": "http://10.42.0.1/", "api_url": api_url, "release_seconds": 3600},
        "install": {"venv": str(VENV)},
    }


CASES = {
    "ward-open": settings("ward", psk=None),
    "ward-wpa2": settings("ward", psk="correct horse battery"),
    "hall-intranet": settings("hall", uplink="intranet"),
    "hall-none": settings("hall", uplink="none", api_url=None),
}


@pytest.fixture(scope="module")
def tools():
    missing = missing_tools("ip", "nft", "dnsmasq", "busybox")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `make test` installs it")


def conf_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("case", CASES)
def test_nftables_ruleset_loads_in_a_namespace(case, tmp_path, tools):
    config = CASES[case]
    render_node(config, tmp_path)
    ruleset = tmp_path / "nftables.conf"
    wifi_if = config["wifi"]["interface"]
    with Netns("fw") as ns, Netns("peer") as peer:
        # The interfaces the ruleset names (veth: this kernel may lack dummy).
        veth(ns, wifi_if, peer, "p0")
        veth(ns, config["network"]["uplink_interface"], peer, "p1")
        check = ns.run("nft", "-c", "-f", ruleset, check=False)
        assert check.returncode == 0, check.stderr
        ns.run("nft", "-f", ruleset)
        ns.run("nft", "-f", ruleset)  # reloading is idempotent
        listing = ns.run("nft", "list", "table", "inet", "rounds").stdout
        tables = ns.run("nft", "list", "tables").stdout
    assert tables.split() == ["table", "inet", "rounds"]
    assert re.search(r"set released \{\s*type ether_addr\s*flags timeout", listing)
    assert f'iifname "{wifi_if}" ether saddr != @released tcp dport 80 redirect to :8080' \
        in listing
    assert f'iifname "{wifi_if}" ip daddr 10.42.0.1 tcp dport 80 redirect to :8080' in listing
    assert "policy drop" not in listing  # only Wi-Fi traffic is filtered, by explicit drops
    intranet = config["network"]["uplink"] == "intranet"
    assert (f'iifname "{wifi_if}" oifname "eth0" accept' in listing) is intranet
    assert ("masquerade" in listing) is intranet
    https = bool(config["portal"]["api_url"])
    assert ("tcp dport 8443 accept" in listing) is https
    assert (f'iifname "{wifi_if}" ip daddr 10.42.0.1 tcp dport 443 redirect to :8443'
            in listing) is https


def test_nft_check_catches_a_broken_ruleset(tmp_path, tools):
    """The check above can fail: a broken rendered ruleset is refused."""
    render_node(CASES["ward-open"], tmp_path)
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(ruleset.read_text().replace("ether saddr != @released",
                                                   "ether saddr != @releasd"))
    with Netns("fw") as ns:
        assert ns.run("nft", "-c", "-f", ruleset, check=False).returncode != 0


@pytest.mark.parametrize("case", CASES)
def test_dnsmasq_accepts_the_config(case, tmp_path, tools):
    config = CASES[case]
    render_node(config, tmp_path)
    conf = tmp_path / "dnsmasq.conf"
    result = sh("dnsmasq", "--test", f"--conf-file={conf}", check=False)
    assert result.returncode == 0 and "syntax check OK" in result.stdout + result.stderr, \
        result.stdout + result.stderr
    lines = conf_lines(conf)
    wifi_if = config["wifi"]["interface"]
    assert f"interface={wifi_if}" in lines and "except-interface=lo" in lines
    assert "dhcp-range=10.42.0.20,10.42.0.250,255.255.255.0,15m" in lines
    assert "dhcp-leasefile=/var/lib/rounds/dnsmasq.leases" in lines
    for name in ("captive.apple.com", "connectivitycheck.gstatic.com", "clients3.google.com",
                 "www.msftconnecttest.com", "detectportal.firefox.com"):
        assert f"address=/{name}/10.42.0.1" in lines
    assert f"address=/{NCSI_DNS[0]}/131.107.255.255" in lines
    if config["network"]["uplink"] == "none":
        assert "address=/#/10.42.0.1" in lines and not any(l.startswith("server=") for l in lines)
    else:
        assert "server=192.0.2.53" in lines and "address=/#/10.42.0.1" not in lines
    option_114 = [l for l in lines if l.startswith("dhcp-option=114")]
    if config["portal"]["api_url"]:
        assert option_114 == [f'dhcp-option=114,"{API_URL}"']
    else:
        assert option_114 == []


def test_dnsmasq_test_catches_a_broken_config(tmp_path, tools):
    render_node(CASES["ward-open"], tmp_path)
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(conf.read_text().replace("dhcp-range=", "dhcp-rnage="))
    assert sh("dnsmasq", "--test", f"--conf-file={conf}", check=False).returncode != 0


def test_option_114_only_with_an_https_api_url(tmp_path):
    with pytest.raises(NodeConfigError, match="https"):
        render_node(settings(api_url="http://10.42.0.1/api/captive"), tmp_path / "http")
    render_node(settings(api_url=None), tmp_path / "none")
    assert "dhcp-option=114" not in (tmp_path / "none" / "dnsmasq.conf").read_text()
    render_node(settings(api_url=API_URL), tmp_path / "https")
    assert f'dhcp-option=114,"{API_URL}"' in (tmp_path / "https" / "dnsmasq.conf").read_text()


def test_hostapd_conf_for_ward_nodes(tmp_path):
    render_node(CASES["ward-wpa2"], tmp_path / "wpa2")
    path = tmp_path / "wpa2" / "hostapd.conf"
    assert path.stat().st_mode & 0o077 == 0, "hostapd.conf holds the passphrase"
    keys = dict(line.split("=", 1) for line in conf_lines(path))
    assert keys["interface"] == "wlan0" and keys["driver"] == "nl80211"
    assert keys["ssid"] == "Rounds-Staff" and keys["country_code"] == "CN"
    assert keys["hw_mode"] == "g" and keys["channel"] == "6"
    assert keys["ctrl_interface"] == "/run/hostapd"
    assert keys["ap_max_inactivity"] == "300"
    assert (keys["wpa"], keys["wpa_key_mgmt"], keys["rsn_pairwise"]) == ("2", "WPA-PSK", "CCMP")
    assert keys["wpa_passphrase"] == "correct horse battery"

    render_node(CASES["ward-open"], tmp_path / "open")
    open_keys = dict(line.split("=", 1) for line in conf_lines(tmp_path / "open" / "hostapd.conf"))
    assert not {k for k in open_keys if k.startswith("wpa") or k == "rsn_pairwise"}
    assert open_keys["ssid"] == "Rounds-Staff" and open_keys["ap_max_inactivity"] == "300"

    written = render_node(CASES["hall-intranet"], tmp_path / "hall")
    assert "hostapd.conf" not in {p.name for p in written}, "hall nodes run no hostapd"
    assert "hostapd.conf" not in destinations(CASES["hall-intranet"])
    assert destinations(CASES["ward-open"])["hostapd.conf"] == "/etc/hostapd/wlan0.conf"


@pytest.mark.parametrize("bad, message", [
    ({"wifi": {"interface": "wlan0", "ssid": "a\nb"}}, "wifi.ssid"),
    ({"wifi": {"interface": "wlan0", "ssid": "x", "psk": "short"}}, "wifi.psk"),
    ({"wifi": {"interface": "wlan0; drop", "ssid": "x"}}, "wifi.interface"),
    ({"network": {"uplink": "internet"}}, "network.uplink"),
    ({"network": {"uplink": "intranet"}}, "network.upstream_dns"),
    ({"network": {"dhcp_range": ["10.42.0.1", "10.42.0.9"]}}, "network.dhcp_range"),
    ({"network": {"portal_port": 80}}, "network.portal_port"),
    ({"portal": {"api_url": 'https://x.test/"\ndhcp-option=3,1.2.3.4'}}, "portal.api_url"),
])
def test_bad_settings_are_refused_by_key(bad, message, tmp_path):
    config = {"node": "n1", "shape": "ward", "wifi": {"ssid": "Rounds"}, **bad}
    with pytest.raises(NodeConfigError, match=re.escape(message)):
        render_node(config, tmp_path)
    assert not list(tmp_path.iterdir()), "nothing is written for a bad config"


def test_sysctl_forwards_only_with_an_intranet_uplink(tmp_path):
    for case, forward in (("hall-intranet", "1"), ("hall-none", "0"), ("ward-open", "0")):
        render_node(CASES[case], tmp_path / case)
        assert conf_lines(tmp_path / case / "sysctl.conf") == [f"net.ipv4.ip_forward = {forward}"]


def test_units_run_least_privilege(tmp_path):
    render_node(CASES["ward-open"], tmp_path)

    def service(unit):
        return conf_lines(tmp_path / unit)

    for unit in ("rounds-portal.service", "rounds-presence.service", "rounds-sync.service",
                 "rounds-gate.service"):
        lines = service(unit)
        assert "User=rounds" in lines and "Restart=on-failure" in lines, unit
        assert "NoNewPrivileges=yes" in lines and "ProtectSystem=strict" in lines, unit
        command = unit.removeprefix("rounds-").removesuffix(".service")
        exec_start = [l for l in lines if l.startswith("ExecStart=")]
        assert len(exec_start) == 1 and exec_start[0].startswith(
            f"ExecStart={VENV}/bin/rounds-edge --config /etc/rounds/node.json {command}"), unit
    caps = {unit: ([l for l in service(unit) if l.startswith("AmbientCapabilities=")],
                   [l for l in service(unit) if l.startswith("CapabilityBoundingSet=")])
            for unit in ("rounds-portal.service", "rounds-presence.service",
                         "rounds-sync.service", "rounds-gate.service")}
    assert caps["rounds-portal.service"] == (["AmbientCapabilities="], ["CapabilityBoundingSet="])
    assert caps["rounds-sync.service"] == (["AmbientCapabilities="], ["CapabilityBoundingSet="])
    assert caps["rounds-presence.service"] == (["AmbientCapabilities=CAP_NET_RAW"],
                                               ["CapabilityBoundingSet=CAP_NET_RAW"])
    assert caps["rounds-gate.service"] == (["AmbientCapabilities=CAP_NET_ADMIN"],
                                           ["CapabilityBoundingSet=CAP_NET_ADMIN"])
    assert "--bind 0.0.0.0:8080" in (tmp_path / "rounds-portal.service").read_text()


@pytest.mark.parametrize("case", CASES)
def test_systemd_analyze_verifies_the_units(case, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed (Debian package systemd); "
                    "the units are not verified here")
    written = render_node(CASES[case], tmp_path)
    units = [path for path in written if path.suffix == ".service"]
    assert (TLS_UNIT in {u.name for u in units}) is bool(CASES[case]["portal"]["api_url"])
    result = sh(analyze, "verify", *units, check=False)
    output = result.stdout + result.stderr
    # verify exits 0 on unknown keys and bad values: any word about our units fails.
    ours = [line for line in output.splitlines()
            if str(tmp_path) in line or any(unit.name in line for unit in units)]
    assert result.returncode == 0 and not ours, output


def test_systemd_analyze_catches_a_broken_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    render_node(CASES["ward-open"], tmp_path)
    unit = tmp_path / "rounds-gate.service"
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = sh(analyze, "verify", unit, check=False)
    assert "rounds-gate.service" in result.stdout + result.stderr


def test_render_node_command_writes_the_files_and_says_where_they_go(tmp_path):
    import json

    from click.testing import CliRunner

    from provisioning.cli import main

    config = tmp_path / "node.json"
    config.write_text(json.dumps(CASES["ward-wpa2"]))
    result = CliRunner().invoke(main, ["render-node", str(config), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'out' / 'nftables.conf'}  ->  /etc/rounds/nftables.conf" in result.output
    assert (tmp_path / "out" / "hostapd.conf").exists()
    config.write_text(json.dumps({**CASES["ward-wpa2"], "shape": "tent"}))
    result = CliRunner().invoke(main, ["render-node", str(config), str(tmp_path / "bad")])
    assert result.exit_code == 1 and "shape" in result.output
    assert not (tmp_path / "bad").exists()
