"""A share of a hospital's nodes in one process, for the day-of-a-hospital load test.

    python -m tests.load.fleet spec.json

Each node is what runs on a Pi, minus the radio: its own SQLite outbox and
photo spool, and ``edge.sync.NodeSync`` with its own MQTT user, in a thread.
One producer thread plays the node's day (``DAY`` seconds from ``start_at``)
on every node of this process: check-ins, presence intervals (queued open,
then again with the same id once closed, as the tracker does) and occupancy
counts appended to the outbox in small transactions, and reports whose
small JPEGs go through ``PhotoSpool`` in the same transaction as the
``report`` record, as the portal does.

When the day is played it writes a manifest (every record id by type, the
final version of each presence interval, each report with its photos and
when each photo was spooled) and prints ``produced``; the links keep
syncing until a line ``stop`` arrives on stdin, then it exits 0 (1 when a
link died).

The spec (JSON): ``site``, ``mqtt`` (host, port), ``nodes`` (``node``,
``password``, ``zone``, ``db``), ``staff`` (ids), ``bound`` (staff id ->
device id), ``events`` (zone -> event ids), ``records_per_node``,
``reports`` (node -> how many), ``day``, ``start_at``, ``seed``, ``manifest``.
"""

import hashlib
import io
import json
import random
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image, ImageDraw

from edge.db import immediate
from edge.outbox import Outbox
from edge.photos import PhotoSpool
from edge.sync import NodeSync
from protocol.clock import iso
from runtime.settings import MqttSettings

CATEGORIES = ("hygiene", "facilities", "safety", "signage", "service", "queue")
CLOSE_SHARE = 0.8  # of presence intervals, closed before the day ends


def jpeg(seed: int) -> bytes:
    """A small real JPEG, different for every seed (content-addressed at the hub)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (160, 120), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(150), rng.randrange(110)
        draw.rectangle((x, y, x + rng.randrange(10, 60), y + rng.randrange(10, 40)),
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class NodeDay:
    """One node's day: a timetable of steps, each one transaction on its outbox."""

    def __init__(self, spec: dict, node: dict, rng: random.Random):
        self.spec, self.node, self.rng = spec, node, rng
        self.zone = node["zone"]
        self.outbox: Outbox | None = None
        self.spool: PhotoSpool | None = None
        self.ids: dict[str, list[str]] = {"checkin": [], "presence": [], "occupancy": [],
                                          "report": []}
        self.presence: dict[str, dict] = {}  # id -> the latest version queued
        self.reports: list[dict] = []
        self.photo_seed = int(hashlib.sha256(node["node"].encode()).hexdigest()[:8], 16)
        self.minute = _now().replace(second=0, microsecond=0) - timedelta(days=1)

    def timetable(self) -> list[tuple[float, "NodeDay", str, int]]:
        """[(offset seconds, self, kind, how many)]: record groups of 1-8 and
        reports, spread over the day; closing an interval comes after opening it."""
        day, rng = self.spec["day"], self.rng
        total = self.spec["records_per_node"]
        n_presence = int(total * 0.35)
        n_occupancy = int(total * 0.15)
        n_checkin = total - n_presence - n_occupancy
        kinds = ["checkin"] * n_checkin + ["presence"] * n_presence + ["occupancy"] * n_occupancy
        rng.shuffle(kinds)
        steps = []
        while kinds:
            size = min(len(kinds), rng.randint(1, 8))
            group, kinds = kinds[:size], kinds[size:]
            for kind in sorted(set(group)):
                steps.append([rng.uniform(0, day * 0.9), self, kind, group.count(kind)])
        steps += [[rng.uniform(0, day * 0.9), self, "report", 1]
                  for _ in range(self.spec["reports"].get(self.node["node"], 0))]
        # Close most intervals: at the end of the day at the latest.
        opened = sorted(s[0] for s in steps if s[2] == "presence")
        closes = [rng.uniform(t, day) for t in opened[:int(len(opened) * CLOSE_SHARE)]]
        steps += [[t, self, "close", 1] for t in closes]
        return [tuple(s) for s in steps]

    def open(self) -> None:
        self.outbox = Outbox(self.node["db"])
        self.spool = PhotoSpool(self.outbox.db, Path(self.node["db"]).parent / "photos")

    def run(self, kind: str, count: int) -> None:
        if kind == "report":
            self._report()
            return
        make = {"checkin": self._checkin, "presence": self._open_interval,
                "occupancy": self._occupancy, "close": self._close_interval}[kind]
        records = [make() for _ in range(count)]
        records = [r for r in records if r is not None]
        if records:
            self.outbox.append_many(records)
            for record in records:
                if record["type"] == "presence":
                    self.presence[record["id"]] = record
                if kind != "close":
                    self.ids[record["type"]].append(record["id"])

    # --- records ------------------------------------------------------------------------

    def _staff(self) -> str:
        return self.rng.choice(self.spec["staff"])

    def _checkin(self) -> dict:
        staff_id = self._staff()
        device = self.spec["bound"].get(staff_id)
        events = self.spec["events"].get(self.zone) or [None]
        return {"id": str(uuid.uuid4()), "type": "checkin", "staff_id": staff_id,
                "event_id": self.rng.choice(events), "zone": self.zone,
                "method": "presence" if device and self.rng.random() < 0.6 else "portal",
                "device": device}

    def _open_interval(self) -> dict:
        staff_id = self._staff()
        seen = iso(_now())
        return {"id": str(uuid.uuid4()), "type": "presence",
                "device": self.spec["bound"].get(staff_id) or f"{self.rng.getrandbits(64):016x}",
                "staff_id": staff_id, "zone": self.zone, "first_seen": seen, "last_seen": seen,
                "closed": False}

    def _close_interval(self) -> dict | None:
        still_open = [r for r in self.presence.values() if not r["closed"]]
        if not still_open:
            return None
        record = dict(self.rng.choice(still_open))
        record.pop("ts", None)  # the outbox stamps this copy's own time
        record.update(last_seen=iso(_now()), closed=True)
        return record

    def _occupancy(self) -> dict:
        self.minute += timedelta(minutes=1)
        return {"type": "occupancy", "id": str(uuid.uuid4()), "zone": self.zone,
                "minute": iso(self.minute), "devices": self.rng.randrange(0, 40)}

    def _report(self) -> None:
        photos = []
        for _ in range(self.rng.choice((1, 1, 2))):
            self.photo_seed += 1
            photos.append(jpeg(self.photo_seed))
        report_id, record_id = str(uuid.uuid4()), str(uuid.uuid4())
        with immediate(self.outbox.db):
            shas = [self.spool.put(photo, report_id) for photo in photos]
            spooled_at = iso(_now())
            self.outbox.append({
                "id": record_id, "type": "report", "report_id": report_id,
                "staff_id": self._staff(), "category": self.rng.choice(CATEGORIES),
                "note": f"load test report {len(self.reports)} on {self.node['node']}",
                "zone": self.zone, "photos": shas, "taken_at": spooled_at})
        self.ids["report"].append(record_id)
        self.reports.append({"report_id": report_id, "record_id": record_id, "photos": shas,
                             "spooled_at": spooled_at})

    def manifest(self) -> dict:
        return {"ids": self.ids, "reports": self.reports,
                "presence": {rid: [r["last_seen"], r["closed"]]
                             for rid, r in self.presence.items()}}


class Link:
    """``NodeSync`` of one node in a thread (as ``rounds-edge sync`` runs it)."""

    def __init__(self, spec: dict, node: dict):
        mqtt = MqttSettings(host=spec["mqtt"]["host"], port=spec["mqtt"]["port"],
                            username=node["node"], password=node["password"])
        self.sync = NodeSync(site=spec["site"], node=node["node"], db_path=node["db"],
                             mqtt=mqtt)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=node["node"], daemon=True)

    def _run(self) -> None:
        try:
            self.sync.run(self.stop)
        except Exception as exc:  # reported by main()
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.sync.wake.set()
        self.thread.join(15)


def main(argv) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    rng = random.Random(spec["seed"])
    days = [NodeDay(spec, node, random.Random(rng.random())) for node in spec["nodes"]]
    for day in days:
        Path(day.node["db"]).parent.mkdir(parents=True, exist_ok=True)
        day.open()  # creates the node database before its link opens it
    links = [Link(spec, node) for node in spec["nodes"]]
    for link in links:
        link.thread.start()
    timetable = sorted((step for day in days for step in day.timetable()),
                       key=lambda s: s[0])
    print(f"playing {len(timetable)} steps on {len(days)} nodes", flush=True)
    for offset, day, kind, count in timetable:
        delay = spec["start_at"] + offset - time.time()
        if delay > 0:
            time.sleep(delay)
        day.run(kind, count)
    manifest = {day.node["node"]: day.manifest() for day in days}
    Path(spec["manifest"]).write_text(json.dumps(manifest))
    print("produced", flush=True)
    for day in days:
        day.outbox.close()
    sys.stdin.readline()  # "stop" (or the test going away)
    for link in links:
        link.close()
    failed = [(link.thread.name, link.error) for link in links if link.error]
    for name, error in failed:
        print(f"link {name} failed: {error!r}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
