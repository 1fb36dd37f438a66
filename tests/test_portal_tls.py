"""The RFC 8908 API over HTTPS: `rounds-edge portal --tls` with the node's
certificate, as phones require for the URI in DHCP option 114."""

import json
import ssl
import subprocess
import sys
import urllib.request

from edge.db import open_db

from .conftest import ROOT, free_port, wait_for


def make_certificate(directory):
    """A self-signed certificate for portal.rounds.test and 127.0.0.1 (openssl CLI)."""
    cert, key = directory / "portal.crt", directory / "portal.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=portal.rounds.test", "-keyout", str(key), "-out", str(cert),
                    "-addext", "subjectAltName=DNS:portal.rounds.test,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_captive_api_is_served_over_https_with_the_nodes_certificate(tmp_path):
    cert, key = make_certificate(tmp_path)
    open_db(tmp_path / "node.db").close()
    port = free_port()
    config = tmp_path / "node.json"
    config.write_text(json.dumps({
        "site": "t", "node": "n1", "zone": "hall-a", "db": str(tmp_path / "node.db"),
        "site_secret": "22" * 32, "mqtt": {},
        "portal": {"url": "http://10.42.0.1/", "api_url": "https://127.0.0.1/api/captive",
                   "tls_cert": str(cert), "tls_key": str(key)}}))
    log = open(tmp_path / "portal.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(config),
                             "portal", "--tls", "--bind", f"127.0.0.1:{port}"],
                            cwd=ROOT, stdout=log, stderr=log)
    trusted = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}/api/captive"

    def fetch(context):
        try:
            with urllib.request.urlopen(url, context=context, timeout=3) as response:
                return response.headers["Content-Type"], json.load(response)
        except (ConnectionError, urllib.error.URLError) as exc:
            if isinstance(getattr(exc, "reason", None), ssl.SSLError):
                raise
            return None

    try:
        content_type, body = wait_for(lambda: fetch(trusted), timeout=30,
                                      message="the HTTPS portal")
        assert content_type == "application/captive+json"
        assert body["captive"] is True and body["user-portal-url"] == "http://10.42.0.1/"
        # A phone that does not trust the certificate gets no answer at all.
        untrusted = ssl.create_default_context()
        try:
            fetch(untrusted)
            raise AssertionError("an untrusted certificate was accepted")
        except urllib.error.URLError as exc:
            assert isinstance(exc.reason, ssl.SSLCertVerificationError)
    finally:
        proc.terminate()
        proc.wait(10)


def test_tls_without_a_certificate_is_a_clear_error(tmp_path):
    config = tmp_path / "node.json"
    config.write_text(json.dumps({"site": "t", "node": "n1", "db": str(tmp_path / "n.db"),
                                  "site_secret": "22" * 32, "mqtt": {}, "portal": {}}))
    result = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(config),
                             "portal", "--tls"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    assert "--tls needs portal.tls_cert and portal.tls_key" in result.stderr
