"""Hub retention (issue 13): a real hub database and photo directory aged past
every limit, the job run, and exactly what should remain found; attendance
settled before the presence it came from goes; the audit log pruned only by
the job, with its triggers back; every removal logged; a second run removes
nothing; the command line and the systemd timer."""

import hashlib
import io
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from hub import audit, retention
from hub.attendance.attendance import event_attendance
from hub.cli.main import main as hub_cli
from hub.db import open_db
from hub.ingest import photos
from protocol.clock import iso
from runtime.settings import ConfigError

from .hubweb import signed_in

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
FIRMWARE = Path(__file__).resolve().parent.parent / "firmware-config" / "hub"


def ago(days: float, hours: float = 0) -> str:
    return iso(NOW - timedelta(days=days, hours=hours))


def _record(node="n1", ts=None):
    ts = ts or ago(0)
    return {"node": node, "ts": ts, "clock_synced": 1, "received_at": ts}


def add_event(db, event_id, start, end, zone="hall-a"):
    db["events"].insert({"id": event_id, "title": event_id, "kind": "lecture",
                         "zones": json.dumps([zone]), "start": start, "end": end,
                         "credit_hours": 1, "min_presence": 0.75})


def add_presence(db, rid, staff, first, last, zone="hall-a"):
    db["presence"].insert({"id": rid, **_record(ts=last), "device": f"dev-{staff}",
                           "staff_id": staff, "zone": zone, "first_seen": first,
                           "last_seen": last, "closed": 1})


def add_checkin(db, rid, staff, event_id, ts):
    db["checkins"].insert({"id": rid, **_record(ts=ts), "staff_id": staff, "event_id": event_id,
                           "zone": "hall-a", "method": "portal", "device": None})


def add_photo(db, directory, colour, received) -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    payload = out.getvalue()
    photo = photos.verify(payload, hashlib.sha256(payload).hexdigest())
    sha = photo.sha256
    photos.record(db, photo, len(payload), photos.store(directory, sha, payload))
    db.conn.execute("UPDATE photos SET received_at = ? WHERE sha256 = ?", (received, sha))
    return sha


def add_ticket(db, n, state, updated, shas):
    report_id = f"r{n}"
    db["reports"].insert({"id": f"rec-{n}", **_record(ts=ago(400)), "report_id": report_id,
                          "staff_id": "D001", "category": "hygiene", "note": None,
                          "zone": "hall-a", "photos": json.dumps(shas), "taken_at": ago(400)})
    db["tickets"].insert({"id": n, "report_id": report_id, "category": "hygiene",
                          "zone": "hall-a", "department": "facilities", "state": state,
                          "created_at": ago(400), "reported_at": ago(400), "due_at": ago(399),
                          "updated_at": updated, "staff_id": "D001", "photos": json.dumps(shas)})
    db["ticket_reports"].insert({"report_id": report_id, "ticket_id": n, "staff_id": "D001",
                                 "duplicate": 0, "matched_by": None, "attached_at": ago(400)})


@pytest.fixture()
def aged(tmp_path):
    """Every kind just past its default limit, and just inside it."""
    db = open_db(tmp_path / "hub.db")
    pics = tmp_path / "photos"
    with db.conn:
        db["staff"].insert_all([{"staff_id": s, "name": s, "department": "nursing",
                                 "role": "staff"} for s in ("D001", "D002")])
        # presence (90 days): an old lecture, settled first; a young one; a long
        # event still on that began before the cut-off keeps its intervals
        add_event(db, "old-lecture", ago(100), ago(100, -1))
        add_checkin(db, "c-old", "D001", "old-lecture", ago(100))
        add_presence(db, "p-old", "D001", ago(100), ago(100, -1))
        add_event(db, "young-lecture", ago(10), ago(10, -1))
        add_presence(db, "p-young", "D002", ago(10), ago(10, -1))
        add_event(db, "long-course", ago(120), iso(NOW + timedelta(days=1)), zone="ward-3")
        add_presence(db, "p-course", "D002", ago(119), ago(119, -2), zone="ward-3")
        # occupancy (400 days)
        for rid, days in (("o-old", 401), ("o-young", 399)):
            db["occupancy"].insert({"id": rid, **_record(), "zone": "hall-a",
                                    "minute": ago(days)[:16], "devices": 3})
        # photos: unattached (30 days), of resolved tickets (180 days)
        shas = {name: add_photo(db, pics, colour, received) for name, colour, received in (
            ("stray-old", (200, 0, 0), ago(31)), ("stray-young", (0, 200, 0), ago(29)),
            ("resolved-old", (0, 0, 200), ago(400)), ("resolved-young", (200, 200, 0), ago(400)),
            ("open", (0, 200, 200), ago(400)), ("shared", (200, 0, 200), ago(400)))}
        add_ticket(db, 1, "resolved", ago(181), [shas["resolved-old"], shas["shared"]])
        add_ticket(db, 2, "closed", ago(179), [shas["resolved-young"]])
        add_ticket(db, 3, "assigned", ago(300), [shas["open"], shas["shared"]])
        # quarantine (30 days), failed sign-ins (30 days)
        for days in (31, 29):
            db["quarantine"].insert({"received_at": ago(days), "topic": "t", "node": "n1",
                                     "record_id": None, "reason": "bad", "payload": b"{}"})
            db["login_failures"].insert({"username": f"u{days}", "at": ago(days)})
        # attendance records: kept for good by default
        add_checkin(db, "c-ancient", "D002", None, ago(2000))
        # the audit log (1095 days)
        for days in (1096, 1094):
            audit.record(db, "office", "ticket.transition", f"t{days}", now=NOW - timedelta(days))
    yield db, pics, shas
    db.close()


def ids(db, table, column="id"):
    return sorted(row[0] for row in db.conn.execute(f"SELECT {column} FROM {table}"))


def test_aged_past_every_limit_exactly_what_should_remain_remains(aged):
    db, pics, shas = aged
    before = event_attendance(db, "old-lecture", NOW)
    assert [(r["staff_id"], r["status"]) for r in before] == [("D001", "present")]

    done = retention.run(db, retention.settings(None), NOW, batch=1)

    assert ids(db, "presence") == ["p-course", "p-young"]
    assert event_attendance(db, "old-lecture", NOW) == before  # settled, not recomputed
    assert ids(db, "attendance_settled", "event_id") == ["old-lecture"]
    assert ids(db, "occupancy") == ["o-young"]
    gone = {shas["stray-old"], shas["resolved-old"]}
    for name, sha in shas.items():
        assert (photos.path_of(db, sha) is None) == (sha in gone), name
        assert (photos.removed_at(db, sha) is not None) == (sha in gone), name
    assert sorted(p.stem for p in pics.rglob("*.jpg")) == sorted(set(shas.values()) - gone)
    assert photos.arrived(db, gone) == gone  # a late duplicate report is not left waiting
    assert [r for (r,) in db.conn.execute("SELECT received_at FROM quarantine")] == [ago(29)]
    assert ids(db, "login_failures", "username") == ["u29"]
    assert ids(db, "checkins") == ["c-ancient", "c-old"]
    targets = ids(db, "audit_log", "target")
    assert "t1094" in targets and "t1096" not in targets
    assert done == {"settled_events": 1, "presence_days": 1, "occupancy_days": 1,
                    "resolved_ticket_photos_days": 1, "unattached_photos_days": 1,
                    "quarantine_days": 1, "login_failures_days": 1, "audit_log_days": 1}

    logged = {e["target"]: e["detail"] for e in audit.entries(db, action="retention.delete")}
    assert logged == {key: {"removed": 1, "before": before_}
                      for key, before_ in retention.cutoffs(retention.settings(None), NOW).items()
                      if key in done}
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        with db.conn:
            db.conn.execute("DELETE FROM audit_log")

    again = retention.run(db, retention.settings(None), NOW)
    assert set(again.values()) == {0}


def test_a_dry_run_counts_and_removes_nothing(aged):
    db, pics, shas = aged
    tables = ("presence", "occupancy", "quarantine", "login_failures", "audit_log",
              "attendance_settled")
    counts = {t: db[t].count for t in tables}
    done = retention.run(db, retention.settings(None), NOW, dry_run=True)
    assert done["presence_days"] == 1 and done["unattached_photos_days"] == 1
    assert {t: db[t].count for t in tables} == counts
    assert all(photos.path_of(db, sha) for sha in shas.values())


def test_attendance_and_hours_go_only_when_the_hospital_sets_a_period(aged):
    db, _, _ = aged
    with db.conn:
        for n, (state, decided) in enumerate((("approved", ago(800)), ("pending", None),
                                              ("rejected", ago(10)))):
            db["volunteer_ledger"].insert({"staff_id": "D001", "ticket_id": 1,
                                           "report_id": f"x{n}", "hours": 0.5, "state": state,
                                           "created_at": ago(900), "decided_by": "office",
                                           "decided_at": decided})
    policy = retention.settings({"attendance_days": 730})
    done = retention.run(db, policy, NOW)
    assert ids(db, "checkins") == ["c-old"]  # 2000 days old is past 730; 100 is not
    assert sorted(s for (s,) in db.conn.execute("SELECT state FROM volunteer_ledger")) == [
        "pending", "rejected"]
    assert done["attendance_days"] == 2


@pytest.mark.parametrize("section, message", [
    ({"presence": 90}, "unknown keys: presence"),
    ({"audit_log_days": 30}, "at least 1095"),
    ({"presence_days": 0}, "at least 1"),
    ({"presence_days": True}, "whole number"),
    ({"quarantine_days": 7.5}, "whole number"),
    ([], "must be an object"),
])
def test_a_wrong_retention_section_is_refused_with_the_reason(section, message):
    with pytest.raises(ConfigError, match=message):
        retention.settings(section)


def test_null_keeps_a_kind_and_defaults_fill_the_rest():
    policy = retention.settings({"presence_days": None, "occupancy_days": 30})
    assert policy["presence_days"] is None and policy["occupancy_days"] == 30
    assert policy["audit_log_days"] == 1095 and policy["attendance_days"] is None


def _config(tmp_path, db_path, **extra):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"site": "st-mary", "db": db_path.name, **extra}))
    return path


def test_the_command_runs_the_job_and_the_nightly_timer_names_it(aged, tmp_path):
    db, _, _ = aged
    config = _config(tmp_path, Path(db.conn.execute("PRAGMA database_list").fetchone()[2]))
    dry = CliRunner().invoke(hub_cli, ["--config", str(config), "retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "presence_days                  would remove" in dry.output
    assert db["presence"].count == 3
    real = CliRunner().invoke(hub_cli, ["--config", str(config), "retention", "run"])
    assert real.exit_code == 0, real.output
    assert db["audit_log"].count > 1  # the audit rows of the run
    assert db["presence"].count < 3  # 90 days ago from today is after the fixture's "old"

    service = (FIRMWARE / "rounds-hub-retention.service").read_text()
    [exec_start] = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    argv = exec_start.split()[1:]
    assert argv[-2:] == ["retention", "run"]
    assert CliRunner().invoke(hub_cli, [*argv[-2:], "--help"]).exit_code == 0
    timer = (FIRMWARE / "rounds-hub-retention.timer").read_text()
    assert "OnCalendar=" in timer and "Persistent=true" in timer


def test_a_bad_retention_in_hub_json_stops_the_command(aged, tmp_path):
    db, _, _ = aged
    config = _config(tmp_path, Path(db.conn.execute("PRAGMA database_list").fetchone()[2]),
                     retention={"audit_log_days": 10})
    result = CliRunner().invoke(hub_cli, ["--config", str(config), "retention", "run"])
    assert result.exit_code != 0 and "at least 1095" in result.output


def test_the_admin_sees_each_period_and_why_and_every_removal(hub_app, hub_db):
    hub_app.config["RETENTION"] = {"presence_days": 45}
    retention.run(hub_db, retention.settings(hub_app.config["RETENTION"]))
    audit.record(hub_db, retention.WHO, "retention.delete", "quarantine_days",
                 {"removed": 7, "before": ago(30)})
    admin = signed_in(hub_app, hub_db, "admin", lang="en")
    html = admin.get("/audit/").get_data(as_text=True)
    table = html[html.index('id="retention"'):]
    for kind in retention.KINDS:
        assert kind.what in table
    assert "45 days" in table and "1095 days" in table and "for good" in table
    assert "PIPL art. 56" in table
    assert "Removed under the retention rules" in html and "removed: 7" in html


def test_a_removed_photo_answers_410_gone_with_the_reason(hub_app, hub_db, tmp_path):
    sha = add_photo(hub_db, tmp_path / "photos", (9, 9, 9), ago(40))
    office = signed_in(hub_app, hub_db, "office", lang="en")
    assert office.get(f"/photos/{sha}.jpg").status_code == 200
    retention.run(hub_db, retention.settings(None))
    response = office.get(f"/photos/{sha}.jpg")
    assert response.status_code == 410
    assert "retention" in response.get_data(as_text=True)
    assert office.get(f"/photos/{'0' * 64}.jpg").status_code == 404
