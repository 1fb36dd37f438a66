"""What ``rounds-provision node add`` puts in a node's bundle: every rendered
config checked by its own tool (as in test_firmware_config.py), file modes,
the node config as the edge reads it, the first-boot script (bash -n,
shellcheck), the tarball, and the label whose QR code holds no secret."""

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image

from edge.portal import config_from_file
from edge.presence.service import PresenceSettings
from provisioning.broker import password_hash, read_passwords
from provisioning.cli import main
from provisioning.nodeconfig import destinations
from provisioning.site import load_site
from runtime.daemon import load_config
from runtime.settings import MqttSettings

from .netns import Netns, missing_tools, sh, veth

WARD_FILES = {"node.json", "ca.crt", "first-boot.sh", "cmdline-hook.txt", "label.png",
              "label.pdf", "enrolment.json", "wheels/rounds-0.1.0-py3-none-any.whl",
              "requirements.lock",
              *(f"config/{name}" for name in (
                  "hostapd.conf", "dnsmasq.conf", "nftables.conf", "sysctl.conf",
                  "rounds-firewall.service", "rounds-dnsmasq.service", "rounds-portal.service",
                  "rounds-presence.service", "rounds-sync.service", "rounds-gate.service"))}
PSK = "correct horse battery"
PIP_INDEX = "https://pypi.rounds.test/simple"


def run(site_dir, *args):
    result = CliRunner().invoke(main, ["--site-dir", str(site_dir), *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    site_dir = root / "site"
    wheels = root / "wheels"
    wheels.mkdir()
    (wheels / "rounds-0.1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 a wheel")
    run(site_dir, "site", "init", "--site", "st-mary", "--name", "St Mary Hospital",
        "--hub-host", "hub.rounds.test", "--hub-db", root / "hub.db")
    run(site_dir, "zone", "add", "ward-3", "--name", "内科三病区", "--building", "B",
        "--floor", "3")
    run(site_dir, "node", "add", "ward-3-a", "--zone", "ward-3", "--ssid", "Rounds-Staff",
        "--psk", PSK, "--pip-index", PIP_INDEX, "--wheels", wheels)
    run(site_dir, "node", "add", "hall-1", "--zone", "ward-3", "--shape", "hall",
        "--interface", "eth0.42", "--uplink", "intranet", "--upstream-dns", "192.0.2.53")
    return load_site(site_dir)


def bundle_files(directory):
    return {str(p.relative_to(directory)): p for p in directory.rglob("*") if p.is_file()}


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def node_json(site, node):
    return json.loads((site.bundles_dir / node / "node.json").read_text())


def test_bundle_holds_the_files_with_safe_modes(site):
    bundle = site.bundles_dir / "ward-3-a"
    files = bundle_files(bundle)
    assert set(files) == WARD_FILES
    private = {"node.json", "config/hostapd.conf"}
    for name, path in files.items():
        expected = 0o600 if name in private else 0o755 if name == "first-boot.sh" else 0o644
        assert mode(path) == expected, name
    for directory in (bundle, bundle / "config", bundle / "wheels"):
        assert mode(directory) == 0o700
    assert mode(site.bundles_dir / "ward-3-a.tar.gz") == 0o600
    hall = set(bundle_files(site.bundles_dir / "hall-1"))
    assert "config/hostapd.conf" not in hall and "config/dnsmasq.conf" in hall
    assert (bundle / "ca.crt").read_bytes() == site.ca_crt.read_bytes()


def test_tarball_holds_the_same_files_with_the_same_modes(site):
    bundle = site.bundles_dir / "ward-3-a"
    files = bundle_files(bundle)
    with tarfile.open(site.bundles_dir / "ward-3-a.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        regular = {name.removeprefix("ward-3-a/"): m for name, m in members.items() if m.isfile()}
        assert set(regular) == set(files)
        for name, member in regular.items():
            assert member.mode == mode(files[name]), name
            assert member.uid == 0 and member.uname == "root"
            assert tar.extractfile(member).read() == files[name].read_bytes(), name
        assert members["ward-3-a"].isdir() and members["ward-3-a"].mode == 0o700


def test_node_config_is_what_the_edge_reads(site):
    path = site.bundles_dir / "ward-3-a" / "node.json"
    config = load_config(path, ("site", "node", "db", "mqtt"))
    assert (config["site"], config["node"], config["zone"]) == ("st-mary", "ward-3-a", "ward-3")
    assert config["db"] == "/var/lib/rounds/node.db"
    assert config["site_secret"] == site.secret()
    mqtt = MqttSettings.from_dict(config["mqtt"])
    assert (mqtt.host, mqtt.port, mqtt.username, mqtt.tls_ca) == (
        "hub.rounds.test", 8883, "ward-3-a", "/etc/rounds/ca.crt")
    # The broker holds exactly this password's $7$ hash.
    _, _, iterations, salt, digest = read_passwords(site.passwd)["ward-3-a"].split("$")
    assert password_hash(mqtt.password, salt=base64.b64decode(salt)) == \
        f"$7${iterations}${salt}${digest}"
    portal = config_from_file(str(path))
    assert (portal["NODE_ID"], portal["ZONE"]) == ("ward-3-a", "ward-3")
    assert portal["LEASES_FILE"] == config["network"]["lease_file"] == \
        "/var/lib/rounds/dnsmasq.leases"
    presence = PresenceSettings.from_config(config)
    assert presence.interface == "wlan0" and presence.hostapd_ctrl == "/run/hostapd/wlan0"
    assert presence.site_secret == bytes.fromhex(site.secret())
    hall = PresenceSettings.from_config(node_json(site, "hall-1"))
    assert hall.interface == "eth0.42" and hall.hostapd_ctrl is None


@pytest.fixture(scope="module")
def tools():
    missing = missing_tools("ip", "nft", "dnsmasq", "busybox")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `make test` installs it")


@pytest.mark.parametrize("node", ["ward-3-a", "hall-1"])
def test_rendered_nftables_and_dnsmasq_pass_their_tools(site, node, tools):
    config = node_json(site, node)
    rendered = site.bundles_dir / node / "config"
    with Netns("fw") as ns, Netns("peer") as peer:
        veth(ns, config["wifi"]["interface"], peer, "p0")
        veth(ns, config["network"]["uplink_interface"], peer, "p1")
        check = ns.run("nft", "-c", "-f", rendered / "nftables.conf", check=False)
    assert check.returncode == 0, check.stderr
    result = sh("dnsmasq", "--test", f"--conf-file={rendered / 'dnsmasq.conf'}", check=False)
    assert result.returncode == 0 and "syntax check OK" in result.stdout + result.stderr
    lines = (rendered / "dnsmasq.conf").read_text().splitlines()
    assert f"interface={config['wifi']['interface']}" in lines
    assert ("server=192.0.2.53" in lines) is (node == "hall-1")


def test_hostapd_conf_carries_the_ssid_and_passphrase(site):
    path = site.bundles_dir / "ward-3-a" / "config" / "hostapd.conf"
    keys = dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))
    assert (keys["interface"], keys["ssid"], keys["country_code"]) == ("wlan0", "Rounds-Staff",
                                                                       "CN")
    assert keys["wpa"] == "2" and keys["wpa_passphrase"] == PSK


@pytest.mark.parametrize("node", ["ward-3-a", "hall-1"])
def test_systemd_analyze_verifies_the_units(site, node, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # The units run /opt/rounds/.venv/bin/rounds-edge, which exists on the
    # node, not here: verify copies that point at this venv instead.
    units = []
    for unit in sorted((site.bundles_dir / node / "config").glob("*.service")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/rounds/.venv", sys.prefix))
        units.append(copy)
    assert len(units) == 6
    result = sh(analyze, "verify", *units, check=False)
    output = result.stdout + result.stderr
    ours = [line for line in output.splitlines()
            if str(tmp_path) in line or any(u.name in line for u in units)]
    assert result.returncode == 0 and not ours, output


def script_array(text, name):
    match = re.search(rf"^{name}=\((.*?)\)$", text, re.S | re.M)
    return [item.strip("'") for item in match.group(1).split()]


def test_first_boot_script_passes_bash_and_shellcheck(site):
    for node in ("ward-3-a", "hall-1"):
        script = site.bundles_dir / node / "first-boot.sh"
        assert script.read_text().startswith("#!/bin/bash\n")
        assert "set -euo pipefail" in script.read_text()
        syntax = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr
        shellcheck = shutil.which("shellcheck")
        if shellcheck:
            lint = subprocess.run([shellcheck, "--shell=bash", script], capture_output=True,
                                  text=True)
            assert lint.returncode == 0, lint.stdout


def test_first_boot_script_installs_every_file_where_it_belongs(site):
    for node, ward in (("ward-3-a", True), ("hall-1", False)):
        config = node_json(site, node)
        text = (site.bundles_dir / node / "first-boot.sh").read_text()
        files = {entry.split("|")[0]: entry.split("|")[1:]
                 for entry in script_array(text, "FILES")}
        expected = {f"config/{name}": place for name, place in destinations(config).items()}
        expected.update({"node.json": "/etc/rounds/node.json", "ca.crt": "/etc/rounds/ca.crt"})
        assert {src: dest for src, (dest, _, _) in files.items()} == expected
        assert files["node.json"][1:] == ["0640", "rounds"], "readable by the services only"
        for src in files:
            assert (site.bundles_dir / node / src).is_file(), src
        packages = script_array(text, "PACKAGES")
        assert {"dnsmasq-base", "nftables", "python3-venv", "libpcap0.8"} <= set(packages)
        assert ("hostapd" in packages) is ward
        units = script_array(text, "UNITS")
        assert ("hostapd@wlan0.service" in units) is ward
        assert {"rounds-sync.service", "rounds-portal.service", "rounds-gate.service"} <= \
            set(units)
        assert script_array(text, "SECRETS") == (
            ["node.json", "config/hostapd.conf"] if ward else ["node.json"])
    ward_text = (site.bundles_dir / "ward-3-a" / "first-boot.sh").read_text()
    assert f"PIP_INDEX={PIP_INDEX}" in ward_text
    assert "PIP_INDEX=''" in (site.bundles_dir / "hall-1" / "first-boot.sh").read_text()
    assert (site.bundles_dir / "ward-3-a" / "cmdline-hook.txt").read_text().startswith(
        "systemd.run=/boot/firmware/ward-3-a/first-boot.sh ")


def test_label_qr_decodes_to_the_enrolment_data_without_secrets(site):
    zbarimg = shutil.which("zbarimg")
    if not zbarimg:
        pytest.fail("zbarimg is not installed (Debian package zbar-tools; make test installs it)")
    bundle = site.bundles_dir / "ward-3-a"
    decoded = subprocess.run([zbarimg, "--raw", "-q", bundle / "label.png"],
                             capture_output=True, text=True, timeout=30)
    assert decoded.returncode == 0, decoded.stderr
    text = decoded.stdout.strip()
    ca_der = x509.load_pem_x509_certificate(site.ca_crt.read_bytes()).public_bytes(Encoding.DER)
    assert json.loads(text) == {"v": 1, "site": "st-mary", "node": "ward-3-a",
                                "zone": "ward-3", "hub": "hub.rounds.test", "port": 8883,
                                "ca_sha256": hashlib.sha256(ca_der).hexdigest()}
    assert text == (bundle / "enrolment.json").read_text().strip()
    config = node_json(site, "ward-3-a")
    for secret in (config["mqtt"]["password"], config["site_secret"], PSK):
        assert secret not in text
    with Image.open(bundle / "label.png") as image:
        assert image.format == "PNG" and image.size == (1200, 600)
    assert (bundle / "label.pdf").read_bytes().startswith(b"%PDF")


def test_first_boot_installs_exactly_the_lock(site, tmp_path):
    """The script's install step, run for real against a stand-in pip that
    records what it is asked: the bundle's lock, hash-checked and unresolved,
    then Rounds at this version and nothing else. The lock it ships is the
    runtime lock the tests' environment matches (tests/test_lock.py)."""
    bundle = site.bundles_dir / "ward-3-a"
    assert (bundle / "requirements.lock").read_bytes() == \
        (Path(__file__).resolve().parent.parent / "requirements" / "runtime.lock").read_bytes()
    script = (bundle / "first-boot.sh").read_text()
    venv, calls = tmp_path / "venv", tmp_path / "pip-calls"
    (venv / "bin").mkdir(parents=True)
    for name, body in (("python", "exit 0"), ("rounds-edge", "exit 0"),
                       ("pip", f'printf "%s\\n" "$*" >> {calls}')):
        (venv / "bin" / name).write_text(f"#!/bin/sh\n{body}\n")
        (venv / "bin" / name).chmod(0o755)
    functions = script[:script.rindex('main "$@"')]
    subprocess.run(["bash", "-c", functions + 'VENV="$1"; BUNDLE="$2"; install_rounds',
                    "first-boot", str(venv), str(bundle)], check=True, env=os.environ)
    lock, rounds, check = calls.read_text().splitlines()
    wheels = f"--no-index --find-links {bundle}/wheels"
    assert lock == f"install -q {wheels} --require-hashes --no-deps -r {bundle}/requirements.lock"
    assert rounds == f"install -q {wheels} --no-deps rounds=={version('rounds')}"
    assert check == "check"
