"""The node prunes its own leftovers (edge/retention.py): each kind after its
period, in short batches, keeping what the node still needs today."""

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from edge import retention
from edge.cli import main
from edge.health import NodeClock
from edge.db import open_db
from edge.photos import PhotoSpool
from edge.state import CONFIG, NodeState
from protocol.clock import iso

from .conftest import running_sync
from .support import wait_for

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
OLD = {"outbox": 91, "spool": 31, "local_reports": 91, "local_checkins": 31, "pin": 2}


def ago(days: float) -> str:
    return iso(NOW - timedelta(days=days))


def queue(db, record_type: str, created: str, **body) -> str:
    rid = str(uuid.uuid4())
    db.conn.execute("INSERT INTO outbox (id, type, body, created_at) VALUES (?, ?, ?, ?)",
                    (rid, record_type, json.dumps({"id": rid, "type": record_type, **body}),
                     created))
    return rid


def spool(db, directory, report_id: str, created: str) -> str:
    sha = PhotoSpool(db, directory).put(uuid.uuid4().bytes, report_id)
    db.conn.execute("UPDATE photo_spool SET created_at = ? WHERE sha256 = ?", (created, sha))
    return sha


@pytest.fixture
def node(tmp_path):
    """A node database with, of every kind, rows past their time and rows
    that stay (young, or still needed); returns (db, spool dir, what stays)."""
    db, photos = open_db(tmp_path / "node.db"), tmp_path / "photos"
    NodeState(db).put(CONFIG, {"zone": "ward-3", "events": [
        {"id": "ev-on", "title": "Hand hygiene", "start": ago(40), "end": ago(-1)}]})
    stay = {}
    # outbox: an old check-in and an old report (whose photos go with it); young ones stay.
    queue(db, "checkin", ago(OLD["outbox"]), staff_id="D001")
    queue(db, "report", ago(OLD["outbox"]), report_id="r-old", photos=[])
    stay["outbox"] = {queue(db, "checkin", ago(89), staff_id="D002"),
                      queue(db, "report", ago(1), report_id="r-new", photos=[])}
    # spool: a photo of the old report (young itself, but its report is gone),
    # an old photo of a young report, and a young one that stays.
    gone_photos = {spool(db, photos, "r-old", ago(1)), spool(db, photos, "r-new", ago(31))}
    stay["spool"] = {spool(db, photos, "r-new", ago(29))}
    for report_id, days in (("r-old", 91), ("r-new", 1), ("r-89", 89)):
        db.conn.execute("INSERT INTO local_reports (report_id, staff_id, category, note, photos,"
                        " ts) VALUES (?, 'D001', 'hygiene', '', 1, ?)", (report_id, ago(days)))
    stay["local_reports"] = {"r-new", "r-89"}
    # check-ins: old ones go, unless their event is still in the schedule.
    for staff, event, days in (("D001", "ev-gone", 31), ("D001", "day:2025-04-01", 61),
                               ("D001", "ev-on", 35), ("D002", "ev-new", 2)):
        db.conn.execute("INSERT INTO local_checkins (staff_id, event_id, ts, record_id) "
                        "VALUES (?, ?, ?, 'x')", (staff, event, ago(days)))
    stay["local_checkins"] = {("D001", "ev-on"), ("D002", "ev-new")}
    # contest scores given here go with the check-ins (local_checkins_days)
    for act, days in (("a-old", 31), ("a-new", 1)):
        db.conn.execute("INSERT INTO local_scores (event_id, act, staff_id, value, ts) "
                        "VALUES ('speech', ?, 'D001', 8, ?)", (act, ago(days)))
    stay["local_scores"] = {"a-new"}
    for days in (2, 0.5, 0.01):
        db.conn.execute("INSERT INTO pin_failures (staff_id, device, ts) VALUES ('D1', 'dev', ?)",
                        (ago(days),))
    stay["pin_failures"] = {ago(0.5), ago(0.01)}
    for mac, days in (("aa:bb:cc:dd:ee:01", 0.1), ("aa:bb:cc:dd:ee:02", -0.1)):
        db.conn.execute("INSERT INTO released (mac, until) VALUES (?, ?)", (mac, ago(days)))
    stay["released"] = {"aa:bb:cc:dd:ee:02"}
    db.conn.execute("INSERT INTO presence_open VALUES ('dev1', 'p1', 'D001', 'ward-3', ?, ?)",
                    (ago(200), ago(200)))
    yield db, photos, stay, gone_photos
    db.close()


def remaining(db, photos) -> dict:
    rows = db.conn.execute
    return {
        "outbox": {r for (r,) in rows("SELECT id FROM outbox")},
        "spool": {r for (r,) in rows("SELECT sha256 FROM photo_spool")},
        "files": {p.stem for p in photos.glob("*.jpg")},
        "local_reports": {r for (r,) in rows("SELECT report_id FROM local_reports")},
        "local_checkins": set(rows("SELECT staff_id, event_id FROM local_checkins")),
        "local_scores": {r for (r,) in rows("SELECT act FROM local_scores")},
        "pin_failures": {r for (r,) in rows("SELECT ts FROM pin_failures")},
        "released": {r for (r,) in rows("SELECT mac FROM released")},
        "presence_open": {r for (r,) in rows("SELECT device FROM presence_open")},
    }


def test_prune_deletes_exactly_what_is_past_its_time(node):
    db, photos, stay, gone_photos = node
    counts = retention.prune(db, photos, retention.settings(None), NOW)
    assert counts == {"outbox": 2, "spool": 2, "local_reports": 1, "local_checkins": 2,
                      "local_scores": 1, "pin_failures": 1, "released": 1}
    left = remaining(db, photos)
    assert left == {**stay, "files": stay["spool"], "presence_open": {"dev1"}}
    assert not gone_photos & left["files"]
    # Nothing more is past its time: a second run deletes nothing.
    assert set(retention.prune(db, photos, retention.settings(None), NOW).values()) == {0}


def test_prune_walks_in_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 3)
    db = open_db(tmp_path / "node.db")
    for i in range(10):
        queue(db, "checkin", ago(100 if i % 3 else 10), staff_id=f"D{i}")
    counts = retention.prune(db, tmp_path / "photos", retention.settings(None), NOW)
    assert counts["outbox"] == 6
    assert db.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 4
    db.close()


def test_settings_are_checked():
    assert retention.settings({"spool_days": 7}) == {**retention.DEFAULTS, "spool_days": 7}
    for section, message in (({"outbox": 9}, "retention.outbox is not a setting"),
                             ({"spool_days": 0}, "whole number of days, at least 1"),
                             ({"spool_days": 1.5}, "whole number of days"),
                             ({"spool_days": None}, "whole number of days"),
                             ({"spool_days": "30"}, "whole number of days"),
                             ({"spool_days": True}, "whole number of days"),
                             ([30], "must be an object")):
        with pytest.raises(ValueError, match=message):
            retention.settings(section)


def write_config(tmp_path, **extra):
    config = tmp_path / "node.json"
    config.write_text(json.dumps({"site": "s1", "node": "n1", "db": str(tmp_path / "node.db"),
                                  "mqtt": {"host": "127.0.0.1"}, **extra}))
    return str(config)


def test_cli_dry_run_counts_and_deletes_nothing(node, tmp_path):
    db, photos, stay, gone_photos = node
    before = remaining(db, photos)
    config = write_config(tmp_path)
    dry = CliRunner().invoke(main, ["--config", config, "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert remaining(db, photos) == before
    *lines, last = dry.output.splitlines()
    assert last == "dry run: nothing deleted"
    # The command prunes by the real clock, long after NOW: every row is old
    # by then, except the check-in to the event still scheduled and the
    # open presence interval.
    assert dict(line.split() for line in lines) == {
        "outbox": "4", "spool": "3", "local_reports": "3", "local_checkins": "3",
        "local_scores": "2", "pin_failures": "3", "released": "2"}
    real = CliRunner().invoke(main, ["--config", config, "prune"])
    assert real.exit_code == 0 and real.output.splitlines() == lines
    assert remaining(db, photos) == {
        "outbox": set(), "spool": set(), "files": set(), "local_reports": set(),
        "local_checkins": {("D001", "ev-on")}, "local_scores": set(), "pin_failures": set(),
        "released": set(), "presence_open": {"dev1"}}


def test_cli_prune_deletes_and_a_bad_retention_section_is_an_error(tmp_path):
    db = open_db(tmp_path / "node.db")
    queue(db, "checkin", iso(datetime.now(timezone.utc) - timedelta(days=8)), staff_id="D1")
    db.close()
    bad = write_config(tmp_path, retention={"outbox_days": 0})
    result = CliRunner().invoke(main, ["--config", bad, "prune"])
    assert result.exit_code == 1 and "retention.outbox_days must be a whole number" in result.output
    result = CliRunner().invoke(main, ["--config", bad, "sync"])  # checked before it starts
    assert result.exit_code == 1 and "retention.outbox_days must be a whole number" in result.output
    good = write_config(tmp_path, retention={"outbox_days": 7})
    result = CliRunner().invoke(main, ["--config", good, "prune"])
    assert result.exit_code == 0 and "outbox 1" in result.output


class Clock(NodeClock):
    """The node's clock at NOW, synchronised or not as the test says."""
    is_synced = False

    def wall(self) -> float:
        return NOW.timestamp()

    def synced(self) -> bool | None:
        return self.is_synced


def test_the_sync_loop_prunes_once_the_clock_is_set_and_again_later(broker, node_db_path):
    db = open_db(node_db_path)
    old = queue(db, "checkin", ago(100), staff_id="D001")
    clock = Clock()
    with running_sync(broker, node_db_path, clock=clock, prune_interval=0.2):
        time.sleep(1.0)  # the clock is not set: nothing is pruned by it
        assert {r for (r,) in db.conn.execute("SELECT id FROM outbox")} == {old}
        clock.is_synced = True
        wait_for(lambda: not db.conn.execute("SELECT 1 FROM outbox").fetchone(),
                 timeout=10, message="the old record pruned")
        queue(db, "checkin", ago(100), staff_id="D002")
        young = queue(db, "checkin", ago(1), staff_id="D003")
        wait_for(lambda: {r for (r,) in db.conn.execute("SELECT id FROM outbox")} == {young},
                 timeout=10, message="the next pruning")
    db.close()
