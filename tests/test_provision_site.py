"""``rounds-provision site init``: the site directory, its modes, its CA and
broker certificate, the hub config as rounds-hub reads it, idempotence and
--force. (The broker actually serving this config: test_provision_nodes.py.)"""

import json
import os
import pwd
import stat

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioning.broker import read_passwords
from provisioning.cli import main
from provisioning.site import load_site
from runtime.daemon import load_config
from runtime.settings import MqttSettings

INIT = ["site", "init", "--site", "test", "--name", "Test Hospital", "--hub-host",
        "hub.rounds.test", "--mqtt-port", "18883"]


def run(site_dir, *args, ok=True):
    result = CliRunner().invoke(main, ["--site-dir", str(site_dir), *map(str, args)])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def snapshot(directory):
    """path -> (bytes, mtime_ns, mode) of every file, and mode of every dir."""
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            path = os.path.join(root, name)
            found[path] = ("dir", os.stat(path).st_mtime_ns, stat.S_IMODE(os.stat(path).st_mode))
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[path] = (f.read(), os.stat(path).st_mtime_ns,
                               stat.S_IMODE(os.stat(path).st_mode))
    return found


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("provision") / "site"
    run(directory, *INIT, "--hub-db", directory.parent / "hub.db")
    return directory


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_site_files_have_safe_modes(site_dir):
    site = load_site(site_dir)
    for directory in (site.dir, site.dir / "ca", site.broker_dir, site.data_dir,
                      site.nodes_dir, site.bundles_dir):
        assert mode(directory) == 0o700, directory
    for secret in (site.secret_file, site.ca_key, site.server_key, site.passwd, site.acl,
                   site.hub_json):
        assert mode(secret) == 0o600, secret
    for public in (site.ca_crt, site.broker_ca, site.server_crt, site.broker_conf,
                   site.site_json):
        assert mode(public) == 0o644, public
    secret = site.secret()
    assert len(secret) == 64 and bytes.fromhex(secret)


def test_ca_signs_a_broker_certificate_for_the_hub_and_localhost(site_dir):
    site = load_site(site_dir)
    ca = x509.load_pem_x509_certificate(site.ca_crt.read_bytes())
    server = x509.load_pem_x509_certificate(site.server_crt.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650
    server.verify_directly_issued_by(ca)
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hub.rounds.test", "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert site.broker_ca.read_bytes() == site.ca_crt.read_bytes()


def test_hub_config_is_what_rounds_hub_reads(site_dir):
    site = load_site(site_dir)
    config = load_config(site.hub_json, ("site", "db", "mqtt"))
    assert config["site"] == "test" and config["db"] == str(site_dir.parent / "hub.db")
    assert config["timezone"] == "Asia/Shanghai"
    mqtt = MqttSettings.from_dict(config["mqtt"])
    assert (mqtt.host, mqtt.port, mqtt.username) == ("127.0.0.1", 18883, "hub")
    assert mqtt.tls_ca == str(site.ca_crt) and len(mqtt.password) >= 24
    # Only the hash of the hub's password is at the broker.
    hashes = read_passwords(site.passwd)
    assert list(hashes) == ["hub"] and hashes["hub"].startswith("$7$101$")
    assert mqtt.password not in site.passwd.read_text()


def test_broker_config_is_tls_only_without_anonymous_clients(site_dir):
    site = load_site(site_dir)
    lines = [line for line in site.broker_conf.read_text().splitlines()
             if line and not line.startswith("#")]
    for expected in ("allow_anonymous false", f"password_file {site.passwd}",
                     f"acl_file {site.acl}", "listener 18883 0.0.0.0",
                     f"cafile {site.broker_ca}", f"certfile {site.server_crt}",
                     f"keyfile {site.server_key}", "tls_version tlsv1.2", "persistence true",
                     f"pid_file {site.pid_file}"):
        assert expected in lines
    # The TLS options belong to the listener: they come after it.
    assert lines.index("tls_version tlsv1.2") > lines.index("listener 18883 0.0.0.0")
    acl = [line for line in site.acl.read_text().splitlines()
           if line and not line.startswith("#")]
    assert acl == ["user hub", "topic readwrite rounds/v1/test/#"]


def test_running_init_again_changes_nothing(site_dir):
    before = snapshot(site_dir)
    result = run(site_dir, *INIT)  # --hub-db left out: the site's own is kept
    assert "nothing changed" in result.output
    assert snapshot(site_dir) == before


def test_init_with_other_values_needs_force_and_changes_nothing(site_dir):
    before = snapshot(site_dir)
    result = run(site_dir, *INIT[:-3], "other.rounds.test", ok=False)
    assert result.exit_code == 1
    assert "hub_host is 'hub.rounds.test', not 'other.rounds.test'" in result.output
    assert "--force" in result.output and "Traceback" not in result.output
    assert snapshot(site_dir) == before


def test_force_regenerates_ca_and_hub_credentials_but_keeps_secret_and_nodes(tmp_path):
    site_dir = tmp_path / "site"
    run(site_dir, *INIT, "--hub-db", tmp_path / "hub.db")
    run(site_dir, "zone", "add", "ward-3", "--name", "Ward 3")
    run(site_dir, "node", "add", "n1", "--zone", "ward-3")
    site = load_site(site_dir)
    secret, ca = site.secret(), site.ca_crt.read_bytes()
    hub_password = site.hub_config()["mqtt"]["password"]
    node_hash = read_passwords(site.passwd)["n1"]

    result = run(site_dir, *INIT[:-3], "hub2.rounds.test", "--force")
    assert "n1" in result.output and "new bundle" in result.output
    site = load_site(site_dir)
    assert site.hub_host == "hub2.rounds.test"
    assert site.secret() == secret, "the site secret survives --force"
    assert site.ca_crt.read_bytes() != ca
    assert site.hub_config()["mqtt"]["password"] != hub_password
    assert read_passwords(site.passwd)["n1"] == node_hash, "node credentials are kept"
    assert "user n1" in site.acl.read_text()
    server = x509.load_pem_x509_certificate(site.server_crt.read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(site.ca_crt.read_bytes()))

    run(site_dir, *INIT[:-3], "hub2.rounds.test", "--force", "--new-site-secret")
    assert load_site(site_dir).secret() != secret
    refused = run(site_dir, *INIT[:-3], "hub2.rounds.test", "--new-site-secret", ok=False)
    assert refused.exit_code != 0 and "--force" in refused.output


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another account needs root")
def test_broker_user_gets_the_broker_files_and_nothing_else(tmp_path):
    site_dir = tmp_path / "site"
    nobody = pwd.getpwnam("nobody")
    run(site_dir, *INIT, "--hub-db", tmp_path / "hub.db", "--broker-user", "nobody")
    site = load_site(site_dir)
    for path in (site.broker_dir, site.data_dir, site.passwd, site.acl, site.server_key,
                 site.server_crt, site.broker_conf):
        assert path.stat().st_uid == nobody.pw_uid, path
    for path in (site.ca_key, site.secret_file, site.hub_json, site.dir / "ca"):
        assert path.stat().st_uid == 0, path
    assert mode(site.dir) == 0o711, "the broker may pass through, not list"
    assert "user nobody" in site.broker_conf.read_text().splitlines()


@pytest.mark.parametrize("option, value, message", [
    ("--site", "Bad Site", "--site"),
    ("--hub-host", "hub host", "--hub-host"),
    ("--bind", "everywhere", "--bind"),
    ("--timezone", "Mars/Olympus", "--timezone"),
    ("--broker-user", "no-such-account-here", "--broker-user"),
])
def test_bad_values_are_refused_and_nothing_is_written(tmp_path, option, value, message):
    args = INIT + [option, value]
    result = run(tmp_path / "site", *args, ok=False)
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "site").exists()


def test_site_json_records_the_values(site_dir):
    record = json.loads((site_dir / "site.json").read_text())
    assert record == {"site": "test", "name": "Test Hospital", "hub_host": "hub.rounds.test",
                      "mqtt_port": 18883, "bind": "0.0.0.0",
                      "hub_db": str(site_dir.parent / "hub.db"),
                      "timezone": "Asia/Shanghai", "broker_user": pwd.getpwuid(os.geteuid())
                      .pw_name}
