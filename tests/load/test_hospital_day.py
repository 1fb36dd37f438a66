"""A day of a 2,000-bed hospital compressed in time (reduced: a tenth of it):
200 nodes, 5,000 staff, 50,000 records and 500 reports with photos through
one Mosquitto and one hub ingest; nothing lost, nothing twice.

    worker processes (tests/load/fleet.py)          root ns
    each: many nodes = outbox + photo spool +       Mosquitto (every node's user
    edge.sync.NodeSync with its own MQTT user;      in its password file and ACL)
    one producer plays every node's day             rounds-hub ingest -> hub.db

Afterwards every record appended on a node is in the hub exactly once (each
presence interval in its final version), every photo is stored, its bytes
hash to its name and decode as a JPEG, every report has its ticket, nothing
is quarantined and every outbox and spool is empty. Node->hub latency
(append on the node -> ``received_at`` at the hub, one machine clock) is
reported, never asserted.
"""

import hashlib
import io
import json
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from hub.db import open_db as open_hub_db
from protocol.clock import iso
from protocol.pins import hash_pin

from ..conftest import SITE
from ..netns import Process, wait_until
from ..scale import report, scaled
from .conftest import ROOT, FleetBroker, percentile, python_argv, python_env, rows

NODES = scaled(20, 200)
STAFF = scaled(500, 5000)
RECORDS = scaled(5000, 50000)
REPORTS = scaled(40, 500)
DAY = scaled(12.0, 150.0)    # seconds the nodes' day is played over
WORKERS = scaled(2, 4)       # processes the nodes are spread over
BOUND_SHARE = 0.6            # of staff with a bound phone

pytestmark = [pytest.mark.load, pytest.mark.timeout(scaled(300, 1500))]

TABLES = {"checkin": "checkins", "presence": "presence", "occupancy": "occupancy",
          "report": "reports"}


def node_name(i: int) -> str:
    return f"node-{i:03d}"


def seed_hub(db_path: Path) -> dict:
    """Zones and nodes, the roster (one PIN hash for everyone: scrypt is slow
    on purpose), bindings and three events per zone today. Returns what the
    nodes' days draw from."""
    now = datetime.now(timezone.utc)
    pin_hash = hash_pin("2468")
    departments = ("cardiology", "nursing", "surgery", "pharmacy", "administration")
    staff = [f"S{i:05d}" for i in range(STAFF)]
    bound = {sid: hashlib.sha256(sid.encode()).hexdigest()[:16]
             for sid in staff[:int(STAFF * BOUND_SHARE)]}
    zones = [f"ward-{i:03d}" for i in range(NODES)]
    events = {zone: [f"ev-{zone}-{k}" for k in range(3)] for zone in zones}
    db = open_hub_db(db_path)
    try:
        with db.atomic():
            db["zones"].insert_all([{"zone": z, "name": f"Ward {z[5:]}",
                                     "building": f"B{int(z[5:]) // 20}"} for z in zones])
            db["nodes"].insert_all([{"node": node_name(i), "zone": z}
                                    for i, z in enumerate(zones)])
            db["staff"].insert_all([{"staff_id": sid, "name": f"Staff {sid}",
                                     "department": departments[i % len(departments)],
                                     "pin_hash": pin_hash} for i, sid in enumerate(staff)])
            db["devices"].insert_all([{"device": device, "staff_id": sid,
                                       "bound_at": iso(now - timedelta(days=30))}
                                      for sid, device in bound.items()])
            db["events"].insert_all([
                {"id": eid, "title": f"Training {k}", "kind": "training",
                 "zones": json.dumps([zone]), "start": iso(now + timedelta(hours=2 * k - 1)),
                 "end": iso(now + timedelta(hours=2 * k)), "credit_hours": 1.0}
                for zone, ids in events.items() for k, eid in enumerate(ids)])
    finally:
        db.close()
    return {"staff": staff, "bound": bound, "events": events, "zones": zones}


class Worker:
    """A fleet worker process: its log, and stdin to tell it to stop."""

    def __init__(self, spec_path: Path, log: Path):
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(python_argv("tests.load.fleet", spec_path),
                                         stdin=subprocess.PIPE, stdout=out,
                                         stderr=subprocess.STDOUT, env=python_env(), cwd=ROOT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def produced(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"fleet worker exited early:\n{self.output()[-3000:]}")
        return "produced" in self.output()

    def stop(self, timeout=60) -> int:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"stop\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def node_leftovers(node_dbs: list[str]) -> int:
    """Records and photos still waiting on the nodes."""
    total = 0
    for db in node_dbs:
        for table in ("outbox", "photo_spool"):
            found = rows(db, f"SELECT count(*) FROM {table}")
            total += found[0][0] if found else 1
    return total


def hub_count(hub_db: Path) -> int:
    parts = [rows(hub_db, f"SELECT count(*) FROM {t}") for t in TABLES.values()]
    parts.append(rows(hub_db, "SELECT count(*) FROM photos"))
    return sum(p[0][0] for p in parts if p)


def _ms(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)
            ).total_seconds() * 1000


def test_a_hospital_day_through_one_broker_and_one_hub(tmp_path):
    hub_db = tmp_path / "hub" / "hub.db"
    hub_db.parent.mkdir()
    world = seed_hub(hub_db)
    names = [node_name(i) for i in range(NODES)]
    broker = FleetBroker(tmp_path / "broker", {"hub": "hub-secret",
                                               **{n: f"{n}-secret" for n in names}})
    broker.start()
    workers: list[Worker] = []
    try:
        hub_config = tmp_path / "hub" / "hub.json"
        hub_config.write_text(json.dumps({"site": SITE, "db": str(hub_db),
                                          "mqtt": broker.mqtt_config("hub")}))
        ingest = Process(python_argv("hub.cli", "--config", hub_config, "ingest"),
                         tmp_path / "ingest.log", env=python_env(), cwd=ROOT).start()
        try:
            reports = {n: REPORTS // NODES + (i < REPORTS % NODES) for i, n in enumerate(names)}
            node_dbs = [str(tmp_path / "nodes" / n / "node.db") for n in names]
            start_at = time.time() + 3  # the workers' links connect meanwhile
            for w in range(WORKERS):
                share = list(range(w, NODES, WORKERS))
                spec = tmp_path / f"fleet-{w}.json"
                spec.write_text(json.dumps({
                    "site": SITE, "mqtt": {"host": "127.0.0.1", "port": broker.port},
                    "nodes": [{"node": names[i], "password": broker.passwords[names[i]],
                               "zone": world["zones"][i], "db": node_dbs[i]} for i in share],
                    "staff": world["staff"], "bound": world["bound"],
                    "events": world["events"], "records_per_node": RECORDS // NODES,
                    "reports": {names[i]: reports[names[i]] for i in share}, "day": DAY,
                    "start_at": start_at, "seed": w,
                    "manifest": str(tmp_path / f"manifest-{w}.json")}))
                workers.append(Worker(spec, tmp_path / f"fleet-{w}.log"))

            wait_until(lambda: all(w.produced() for w in workers), DAY + 120, interval=0.5,
                       what="the nodes' day to be played")
            produced_at = time.time()
            manifest = {}
            for w in range(WORKERS):
                manifest.update(json.loads((tmp_path / f"manifest-{w}.json").read_text()))
            expected = {kind: {rid for m in manifest.values() for rid in m["ids"][kind]}
                        for kind in TABLES}
            photos = {sha: r["spooled_at"] for m in manifest.values() for r in m["reports"]
                      for sha in r["photos"]}
            total = sum(len(ids) for ids in expected.values()) + len(photos)

            def delivered():
                assert ingest.alive(), ingest.output()[-3000:]
                return hub_count(hub_db) >= total and node_leftovers(node_dbs) == 0

            wait_until(delivered, scaled(120, 900), interval=1,
                       what="every record and photo at the hub and every node drained")
            drained_s = time.time() - produced_at
            codes = [w.stop() for w in workers]
            assert codes == [0] * WORKERS, "\n".join(w.output()[-2000:] for w in workers)
        finally:
            ingest.stop()
    finally:
        for w in workers:
            w.stop(10)
        broker.stop()

    hub = open_hub_db(hub_db)
    try:
        stored = {kind: [r[0] for r in hub.conn.execute(f"SELECT id FROM {table}")]
                  for kind, table in TABLES.items()}
        timing = [(r[0], r[1]) for table in TABLES.values() for r in hub.conn.execute(
            f"SELECT received_at, ts FROM {table}")]
        presence = {r[0]: [r[1], bool(r[2])] for r in hub.conn.execute(
            "SELECT id, last_seen, closed FROM presence")}
        hub_photos = {r[0]: (r[1], r[2], r[3]) for r in hub.conn.execute(
            "SELECT sha256, path, size, received_at FROM photos")}
        hub_reports = {r[0]: json.loads(r[1]) for r in hub.conn.execute(
            "SELECT report_id, photos FROM reports")}
        ticketed = {r[0] for r in hub.conn.execute("SELECT report_id FROM ticket_reports")}
        quarantined = hub["quarantine"].count
    finally:
        hub.close()

    all_stored = [rid for ids in stored.values() for rid in ids]
    all_expected = set().union(*expected.values())
    lost = len(all_expected - set(all_stored))
    duplicated = len(all_stored) - len(set(all_stored))
    latencies = sorted(_ms(received, ts) for received, ts in timing)
    photo_latencies = sorted(_ms(hub_photos[sha][2], at) for sha, at in photos.items()
                             if sha in hub_photos)
    counts = {
        "nodes": NODES, "staff": STAFF, "records_sent": len(all_expected),
        "records_stored": len(set(all_stored) & all_expected), "lost": lost,
        "duplicated": duplicated, "unexpected": len(set(all_stored) - all_expected),
        "reports": len(expected["report"]), "photos_sent": len(photos),
        "photos_stored": len(set(photos) & set(hub_photos)), "quarantined": quarantined,
        "day_s": DAY, "drained_after_s": round(drained_s, 1),
        "latency_p50_ms": round(percentile(latencies, 50)),
        "latency_p95_ms": round(percentile(latencies, 95)),
        "latency_p99_ms": round(percentile(latencies, 99)),
        "latency_max_ms": round(latencies[-1]),
        "photo_latency_p99_ms": round(percentile(photo_latencies, 99)) if photo_latencies
        else None,
    }
    report("load_day", counts)

    assert len(all_expected) == sum(len(m["ids"][k]) for m in manifest.values() for k in TABLES)
    assert len(expected["report"]) == REPORTS
    assert sum(len(m["ids"][k]) for m in manifest.values() for k in TABLES
               if k != "report") == NODES * (RECORDS // NODES)
    for kind in TABLES:  # every record in its table, exactly once
        assert sorted(stored[kind]) == sorted(expected[kind]), kind
    assert lost == 0 and duplicated == 0
    # Each presence interval in the version queued last (closed or still open).
    final = {rid: v for m in manifest.values() for rid, v in m["presence"].items()}
    assert presence == final
    # Every photo stored, its bytes its name, a JPEG that decodes.
    assert set(hub_photos) == set(photos)
    for sha, (path, size, _) in hub_photos.items():
        data = Path(path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha and len(data) == size, path
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            image.load()
    # Every report with its photos, and each one made a ticket (its photos were in).
    sent_reports = {r["report_id"]: r["photos"] for m in manifest.values() for r in m["reports"]}
    assert hub_reports == sent_reports
    assert ticketed == set(sent_reports)
    assert quarantined == 0
    assert node_leftovers(node_dbs) == 0
