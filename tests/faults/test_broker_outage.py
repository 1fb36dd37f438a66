"""Broker down for a long time with a large backlog.

Mosquitto is stopped while the node goes on working: phones keep checking
in on the portal (each answered with its 303) and records keep being
appended to the outbox, until the backlog is 40,000 records (200,000 at
full size). The backlog lives on disk, not in memory: ``rounds-edge sync``'s
resident set (VmRSS) stays flat while the backlog grows and while it drains,
because sync hands paho a bounded window of batches read from the outbox,
never the backlog. It grows by less than a third of what a process that
reads the whole backlog grows by (measured beside it, in the same run).

When the broker returns, everything drains: every record is at the hub
exactly once, and in the node's order: the hub's arrival order (rowid within
a table, ``received_at`` across tables) follows the outbox's ``seq`` order.
The broker is stopped cleanly (SIGTERM, so it saves the hub's persistent
session): a broker that dies without saving it can drop the first batches
published before the hub has subscribed again; those are sent again after
the ack timeout, complete but later than their successors (``test_kills``
covers that case for completeness, not order).
"""

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from edge.outbox import Outbox
from protocol.clock import iso
from protocol.pins import device_id

from ..conftest import ROOT
from ..scale import report, scaled
from ..support import wait_for
from .conftest import EVENT, SECRET, ZONE, phone_address, rss_kib, staff_id
from .stream import PortalPhone

TABLES = {"checkin": "checkins", "presence": "presence", "occupancy": "occupancy"}
# What it costs a process to hold the whole backlog (the peer of sync's
# growth, measured in the same run): reads the outbox into memory at once.
HOLD_ALL = """
import sys
from edge.outbox import Outbox
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
outbox = Outbox(sys.argv[1])
outbox.pending(1)
before = rss()
items = outbox.pending(10**9)
print(rss() - before, len(items))
"""


def backlog_records(start: int, count: int) -> list[dict]:
    """Presence intervals and occupancy minutes, as a busy ward makes them."""
    now = datetime.now(timezone.utc)
    records = []
    for n in range(start, start + count):
        if n % 10 == 9:
            records.append({"type": "occupancy", "zone": ZONE,
                            "minute": iso((now + timedelta(minutes=n)).replace(
                                second=0, microsecond=0)), "devices": n % 300})
        else:
            i = n % 1000
            seen = now + timedelta(seconds=n)
            records.append({"type": "presence",
                            "device": device_id(bytes.fromhex(SECRET), phone_address(i)[1]),
                            "staff_id": staff_id(i % 200), "zone": ZONE,
                            "first_seen": iso(seen), "last_seen": iso(seen + timedelta(minutes=5)),
                            "closed": True})
    return records


class RssSampler(threading.Thread):
    """VmRSS of ``pid`` every 100 ms, tagged with the phase of the test."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.phase = pid, "baseline"
        self.samples: list[tuple[str, int]] = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(0.1):
            self.samples.append((self.phase, rss_kib(self.pid)))

    def peak(self, phase: str) -> int:
        return max(kib for p, kib in self.samples if p == phase)


def hub_arrivals(site) -> dict[str, tuple[str, str, int]]:
    """record id -> (table, received_at, rowid) for every ingested record."""
    arrivals = {}
    for table in TABLES.values():
        for rid, received_at, rowid in site.hub_rows(
                f"SELECT id, received_at, rowid FROM {table}"):
            arrivals[rid] = (table, received_at, rowid)
    return arrivals


def holding_cost_kib(site) -> int:
    """How much a process grows by reading the node's whole backlog into memory."""
    result = subprocess.run([sys.executable, "-c", HOLD_ALL, str(site.node_db)], env=site.env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return int(result.stdout.split()[0])


def disk_bytes(site) -> int:
    return sum(p.stat().st_size for p in site.node_db.parent.glob("node.db*"))


@pytest.mark.timeout(scaled(150, 900))
def test_long_outage_backlog_on_disk_drains_in_order(fault_site, broker):
    target = scaled(40_000, 200_000)
    phones = scaled(150, 1000)
    site = fault_site(phones=phones)
    ingest, sync, portal = site.ingest().start(), site.sync().start(), site.portal().start()
    wait_for(site.node_ready, timeout=30, message="the hub's roster and event at the node")
    wait_for(site.portal_up, timeout=30, message="the portal up")

    # Warm up: a first few batches through, so the baseline has sync's working set.
    outbox = Outbox(site.node_db)
    outbox.append_many(backlog_records(-2000, 2000))
    wait_for(lambda: site.backlog() == 0, timeout=60, message="the warm-up drained")
    sampler = RssSampler(sync.pid)
    sampler.start()
    time.sleep(1.0)

    broker.stop()
    outage_started = time.monotonic()
    sampler.phase = "outage"
    accepted, refused = [], []

    def phones_check_in():
        for i in range(phones):
            (accepted if PortalPhone(site.portal_port, i).checkin() else refused).append(i)

    checking_in = threading.Thread(target=phones_check_in)
    checking_in.start()
    appended = 0
    while appended < target:
        chunk = min(500, target - appended)
        outbox.append_many(backlog_records(appended, chunk))
        appended += chunk
    checking_in.join(120)
    outbox.close()
    assert not refused and len(accepted) == phones, "the node stopped taking check-ins"
    assert site.hub_rows("SELECT count(*) FROM checkins") == [(0,)]

    backlog = site.node_rows("SELECT id, type FROM outbox ORDER BY seq")
    backlog_bytes = site.node_rows("SELECT sum(length(body)) FROM outbox")[0][0]
    on_disk = disk_bytes(site)
    holding = holding_cost_kib(site)
    assert len(backlog) == target + phones
    assert sync.alive() and ingest.alive() and portal.alive()

    sampler.phase = "drain"
    broker.start()
    returned = time.monotonic()
    wait_for(lambda: site.backlog() == 0, timeout=scaled(120, 600), interval=0.5,
             message="the backlog drained")
    drained = time.monotonic()
    time.sleep(0.5)
    sampler.stopping.set()
    sampler.join()

    arrivals = hub_arrivals(site)
    node_order = [rid for rid, _ in backlog]
    missing = [rid for rid in node_order if rid not in arrivals]
    # Exactly once: record ids are the hub's primary keys; a person's check-in twice
    # under two ids would be a duplicate too.
    duplicated = sum(n - 1 for (n,) in site.hub_rows(
        "SELECT count(*) FROM checkins WHERE event_id = ? GROUP BY staff_id", EVENT))
    out_of_order = 0
    for table in TABLES.values():
        in_node_order = [arrivals[rid][2] for rid in node_order
                         if rid in arrivals and arrivals[rid][0] == table]
        out_of_order += sum(1 for a, b in zip(in_node_order, in_node_order[1:]) if a > b)
    received = [arrivals[rid][1] for rid in node_order if rid in arrivals]
    out_of_order += sum(1 for a, b in zip(received, received[1:]) if a > b)

    baseline = sampler.peak("baseline")
    growth = max(sampler.peak("outage"), sampler.peak("drain")) - baseline
    report("faults_broker_outage", {
        "backlog_records": len(backlog), "outage_s": round(returned - outage_started),
        "drain_s": round(drained - returned), "portal_checkins_during_outage": len(accepted),
        "backlog_mib": round(backlog_bytes / 2**20, 1),
        "node_db_on_disk_mib": round(on_disk / 2**20, 1),
        "sync_rss_baseline_mib": round(baseline / 1024, 1),
        "sync_rss_peak_outage_mib": round(sampler.peak("outage") / 1024, 1),
        "sync_rss_peak_drain_mib": round(sampler.peak("drain") / 1024, 1),
        "holding_backlog_in_memory_mib": round(holding / 1024, 1),
        "records_stored": len(node_order) - len(missing), "lost": len(missing),
        "duplicated": duplicated, "out_of_order": out_of_order})

    # Sync holds at most its window (8 batches of 500): well under a third of
    # what holding this backlog takes, at either size.
    assert growth < holding / 3, f"sync grew by {growth} KiB; the backlog takes {holding} KiB"
    assert missing == [] and duplicated == 0
    assert len(arrivals) == len(node_order) + 2000  # + the warm-up, nothing else
    assert out_of_order == 0
    assert sorted(staff for (staff,) in site.hub_rows(
        "SELECT staff_id FROM checkins WHERE event_id = ?", EVENT)) == sorted(
        staff_id(i) for i in accepted)
