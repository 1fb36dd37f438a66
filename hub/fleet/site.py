"""Site-wide settings pushed to every node in its retained config.

Today that is the staff Wi-Fi (SSID and WPA2 passphrase, the same on every
node so that a phone keeps one private MAC across the hospital). A change
reaches each node within seconds in its retained config (hub/ingest/downlink.py)
and is kept there. Not yet done: rewriting a ward node's hostapd.conf from it
(hostapd runs as root, outside Rounds' least-privilege processes); until then
a new SSID reaches hostapd with a new bundle (`rounds-provision node add
--force`).
"""

import json


class SettingsError(ValueError):
    pass


def get(db, key: str):
    row = db.conn.execute("SELECT value FROM site_settings WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def _put(db, key: str, value) -> None:
    db.conn.execute("INSERT INTO site_settings (key, value) VALUES (?, ?) ON CONFLICT(key) "
                    "DO UPDATE SET value = excluded.value", (key, json.dumps(value)))


def wifi(db) -> dict | None:
    """``{"ssid", "psk"}`` (psk None: an open network), or None when unset."""
    return get(db, "wifi")


def set_wifi(db, ssid: str, psk: str | None) -> dict:
    if not isinstance(ssid, str) or not 0 < len(ssid.encode()) <= 32:
        raise SettingsError("ssid must be 1..32 bytes")
    if any(ord(c) < 32 for c in ssid):
        raise SettingsError("ssid must not contain control characters")
    if psk is not None and (not isinstance(psk, str) or not 8 <= len(psk) <= 63
                            or any(not 32 <= ord(c) < 127 for c in psk)):
        raise SettingsError("psk must be 8..63 printable ASCII characters, or null for none")
    value = {"ssid": ssid, "psk": psk}
    _put(db, "wifi", value)
    return value
