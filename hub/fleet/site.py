"""Site-wide settings (``site_settings``, JSON values by key).

The site's **name** (``name``): what people call the hospital, in its own
language, with an optional English name, which the dashboard shows in its
page titles (the site id, ``hub.json``'s ``site``, is a slug for topics and
files).

The staff **Wi-Fi** (``wifi``: SSID and WPA2 passphrase, the same on every
node so that a phone keeps one private MAC across the hospital) is pushed to
every node in its retained config: a change reaches each node within seconds
(hub/ingest/downlink.py) and is kept there. Not yet done: rewriting a ward
node's hostapd.conf from it (hostapd runs as root, outside Rounds'
least-privilege processes); until then a new SSID reaches hostapd with a new
bundle (`rounds-provision node add --force`).
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


NAME_MAX = 100


def name(db, lang: str | None = None) -> str | None:
    """The site's name; with ``lang`` ``"en"`` its English name when it has
    one. None when no name is set."""
    value = get(db, "name") or {}
    return (lang == "en" and value.get("name_en")) or value.get("name") or None


def set_name(db, name: str, name_en: str | None = None) -> dict:
    """Name the site (``name_en``: its English name, optional)."""
    value = {"name": (name or "").strip(), "name_en": (name_en or "").strip() or None}
    for key, text in value.items():
        if text is not None and (len(text) > NAME_MAX or any(ord(c) < 32 for c in text)):
            raise SettingsError(f"{key} must be at most {NAME_MAX} characters, "
                                "without control characters")
    if not value["name"]:
        raise SettingsError("name is required")
    _put(db, "name", value)
    return value
