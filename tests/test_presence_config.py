"""The ``presence`` section of the node config, and `rounds-edge presence`
refusing a config that cannot work (exit 2, the key named)."""

import json

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.presence.service import PresenceConfigError, PresenceSettings

BASE = {"node": "n1", "db": "/tmp/x/node.db", "site_secret": "5e" * 32}


def test_defaults_on_a_ward_node():
    s = PresenceSettings.from_config({**BASE, "wifi": {"interface": "wlan1"}})
    assert s.interface == "wlan1" and s.sniff is True
    assert s.hostapd_ctrl == "/run/hostapd/wlan1", "a ward node (the default shape) has hostapd"
    assert (s.away_after, s.refresh, s.hostapd_poll, s.minute) == (300, 60, 30, 60)
    assert s.release_seconds == 43200 and s.site_secret == bytes.fromhex("5e" * 32)


def test_a_hall_node_sniffs_its_vlan_interface_without_hostapd():
    s = PresenceSettings.from_config({**BASE, "shape": "hall",
                                      "wifi": {"interface": "eth0.42"}})
    assert s.interface == "eth0.42" and s.hostapd_ctrl is None


def test_explicit_settings_win():
    s = PresenceSettings.from_config({**BASE, "portal": {"release_seconds": 600}, "presence": {
        "interface": "wlan2", "hostapd_ctrl": None, "away_after": 120, "refresh": 30}},
        interface="wlan3")
    assert s.interface == "wlan3" and s.hostapd_ctrl is None
    assert (s.away_after, s.refresh, s.release_seconds) == (120, 30, 600)


@pytest.mark.parametrize("presence, message", [
    ({"away_after": 0}, "presence.away_after"),
    ({"refresh": "60"}, "presence.refresh"),
    ({"sniff": "yes"}, "presence.sniff"),
    ({"hostapd_ctrl": ""}, "presence.hostapd_ctrl"),
    ({"sniff": False, "hostapd_ctrl": None}, "nothing to listen to"),
])
def test_bad_settings_are_named(presence, message):
    with pytest.raises(PresenceConfigError, match=message):
        PresenceSettings.from_config({**BASE, "presence": presence})


def test_the_cli_exits_2_on_a_bad_config(tmp_path):
    config = tmp_path / "node.json"
    config.write_text(json.dumps({**BASE, "db": str(tmp_path / "node.db"),
                                  "presence": {"away_after": -5}}))
    result = CliRunner().invoke(main, ["--config", str(config), "presence"])
    assert result.exit_code == 2 and "presence.away_after" in result.output
    config.write_text(json.dumps({**BASE, "site_secret": "not hex"}))
    result = CliRunner().invoke(main, ["--config", str(config), "presence"])
    assert result.exit_code == 2 and "site_secret must be hex" in result.output
