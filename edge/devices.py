"""Which phone is this, whose is it, and may it pass the captive portal?

A phone is known by the MAC it uses on our SSID, found behind its IP address
in dnsmasq's lease file or the kernel's neighbour table (never by a cookie:
captive mini-browsers drop them). Outside this module and the nftables gate,
a MAC appears only as ``device_id`` (HMAC-SHA256 with the site secret, 16 hex).
"""

import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from protocol.clock import iso, parse_iso
from protocol.pins import device_id

from .state import NodeState

LEASES_FILE = "/var/lib/misc/dnsmasq.leases"
ARP_FILE = "/proc/net/arp"
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
_INCOMPLETE = "00:00:00:00:00:00"


def normalise_mac(text: str) -> str | None:
    mac = text.strip().lower().replace("-", ":")
    return mac if _MAC.match(mac) and mac != _INCOMPLETE else None


# leases file path -> ((mtime_ns, size), {ip: mac}); re-read only when it changes.
_leases: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}


def _lease_table(leases_file) -> dict[str, str]:
    path = str(leases_file)
    try:
        stat = os.stat(path)
    except OSError:
        return {}
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _leases.get(path)
    if cached is None or cached[0] != stamp:
        table = {}
        try:
            for line in Path(path).read_text().splitlines():
                fields = line.split()  # expiry mac ip hostname client-id
                if len(fields) >= 3:
                    table[fields[2]] = fields[1]
        except OSError:
            return {}
        cached = _leases[path] = (stamp, table)
    return cached[1]


def mac_for_ip(ip: str, leases_file=LEASES_FILE, arp_file=ARP_FILE) -> str | None:
    """The MAC behind ``ip``: the DHCP lease first, then the neighbour table."""
    leased = _lease_table(leases_file).get(ip)
    if leased:
        return normalise_mac(leased)
    try:
        for line in Path(arp_file).read_text().splitlines()[1:]:
            # IP address, HW type, Flags, HW address, Mask, Device
            fields = line.split()
            if len(fields) >= 4 and fields[0] == ip:
                return normalise_mac(fields[3])
    except OSError:
        pass
    return None


class Devices:
    def __init__(self, db, site_secret: bytes, state: NodeState | None = None):
        """``state``: the node state to read bindings from (a portal request
        passes the one it has already read), default a fresh one on ``db``."""
        self.db, self.site_secret = db, site_secret
        self.state = state or NodeState(db)

    def device_id(self, mac: str) -> str:
        return device_id(self.site_secret, mac)

    def staff_for(self, device: str) -> str | None:
        """Whose phone this is: a binding made here, else the hub's roster."""
        row = self.db.conn.execute(
            "SELECT staff_id FROM bindings_local WHERE device = ?", (device,)).fetchone()
        return row[0] if row else self.state.bound_staff(device)

    def bind(self, device: str, staff_id: str, now: datetime | None = None) -> None:
        """Bind ``device`` to ``staff_id``, replacing that person's other phones
        (a rotated MAC makes a new device; one step re-binds it). Call inside
        the caller's transaction when it also queues the ``binding`` record."""
        self.db.conn.execute("DELETE FROM bindings_local WHERE staff_id = ? AND device != ?",
                             (staff_id, device))
        self.db.conn.execute(
            "INSERT INTO bindings_local (device, staff_id, bound_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device) DO UPDATE SET staff_id = excluded.staff_id, "
            "bound_at = excluded.bound_at",
            (device, staff_id, iso(now or datetime.now(timezone.utc))))

    def release(self, mac: str, seconds: int, now: datetime | None = None) -> None:
        """Let ``mac`` past the captive portal for ``seconds`` (extends, never shortens)."""
        until = iso((now or datetime.now(timezone.utc)) + timedelta(seconds=seconds))
        with self.db.atomic():
            self.db.conn.execute(
                "INSERT INTO released (mac, until) VALUES (?, ?) ON CONFLICT(mac) "
                "DO UPDATE SET until = max(until, excluded.until)", (mac, until))

    def released_until(self, mac: str, now: datetime | None = None) -> datetime | None:
        row = self.db.conn.execute("SELECT until FROM released WHERE mac = ?", (mac,)).fetchone()
        if row is None:
            return None
        until = parse_iso(row[0])
        return until if until > (now or datetime.now(timezone.utc)) else None

    def released(self, now: datetime | None = None) -> dict[str, int]:
        """Every released MAC with its remaining seconds (for the nftables gate)."""
        now = now or datetime.now(timezone.utc)
        result = {}
        for mac, until in self.db.conn.execute("SELECT mac, until FROM released"):
            remaining = int((parse_iso(until) - now).total_seconds())
            if remaining > 0:
                result[mac] = remaining
        return result

    def forget_expired(self, now: datetime | None = None) -> int:
        with self.db.atomic():
            return self.db.conn.execute(
                "DELETE FROM released WHERE until <= ?",
                (iso(now or datetime.now(timezone.utc)),)).rowcount

    def binding(self, device: str) -> dict | None:
        """The binding of ``device``: ``{"staff_id", "bound_at", "source"}``,
        ``source`` being ``"node"`` (bound here; ``bound_at`` set) or ``"hub"``
        (from the roster; ``bound_at`` None); None when unbound."""
        row = self.db.conn.execute(
            "SELECT staff_id, bound_at FROM bindings_local WHERE device = ?", (device,)).fetchone()
        if row:
            return {"staff_id": row[0], "bound_at": row[1], "source": "node"}
        staff_id = NodeState(self.db).bound_staff(device)
        return {"staff_id": staff_id, "bound_at": None, "source": "hub"} if staff_id else None
