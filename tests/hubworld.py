"""A small hospital in a hub database, for tests that walk every route: two
departments with staff, a zone (a ward of the reviewed department) with a node
and a floor plan, an event (taking registration: one place, one waiting), a
ticket per department (one with a photo), pending volunteer hours, a survey
task with a response and a record entry waiting at the department review
level (staff are in party branches).

``world(db, tmp_path)`` answers the example value of every URL parameter the
dashboard and the API use, by name."""

import hashlib
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

from PIL import Image

from hub.attendance.attendance import set_expected
from hub.contests import acts
from hub.db import write_transaction
from hub.ingest import photos
from hub.ingest.store import update_node_status, write_batch
from hub.records import entries as record_entries
from hub.schedule import registration
from hub.surveys import questionnaires, tasks
from hub.tickets import hours, tickets
from protocol.clock import iso
from protocol.records import validate

REVIEWED = "environmental_services"
OTHER = "security"
BRANCH = "第一党支部"  # S001's party branch
OTHER_BRANCH = "第二党支部"


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


def world(db, tmp_path) -> dict:
    now = datetime.now(timezone.utc)
    photo = _jpeg()
    digest = hashlib.sha256(photo).hexdigest()
    path = photos.store(tmp_path / "photos", digest, photo)
    with db.conn:
        db["departments"].insert_all([{"department": REVIEWED, "name": "Environmental services"},
                                      {"department": OTHER, "name": "Security"}])
        db["staff"].insert_all([
            {"staff_id": "S001", "name": "Zhang Min", "department": REVIEWED, "role": "staff",
             "branch": BRANCH},
            {"staff_id": "S002", "name": "Chen Jie", "department": OTHER, "role": "staff",
             "branch": OTHER_BRANCH}])
        db["devices"].insert({"device": "0123456789abcdef", "staff_id": "S001",
                              "bound_at": iso(now - timedelta(days=3)), "node": "hall-a-1"})
        db["zones"].insert({"zone": "hall-a", "name": "Lecture hall A", "campus": "Main",
                            "building": "Teaching", "floor": "2", "department": REVIEWED,
                            "polygon": json.dumps([[10, 10], [300, 10], [300, 200], [10, 200]])})
        plan = db["floor_plans"].insert({
            "campus": "Main", "building": "Teaching", "floor": "2", "kind": "json",
            "content": json.dumps({"width": 1000, "height": 600,
                                   "outline": [[0, 0], [1000, 0], [1000, 600], [0, 600]]}),
            "width": 1000, "height": 600, "updated_at": iso(now)}).last_pk
        db["nodes"].insert({"node": "hall-a-1", "zone": "hall-a"})
        db["events"].insert({"id": "ev-1", "title": "Hand hygiene", "kind": "lecture",
                             "zones": json.dumps(["hall-a"]), "start": iso(now - timedelta(hours=1)),
                             "end": iso(now + timedelta(hours=1)), "credit_hours": 1})
        set_expected(db, "ev-1", departments=[REVIEWED])
        db["photos"].insert({"sha256": digest, "size": len(photo), "path": str(path),
                             "received_at": iso(now)})
    update_node_status(db, "hall-a-1", {"state": "online", "version": "0.1.0", "backlog": 0,
                                        "disk_free": 10**9, "clock_synced": True,
                                        "ts": iso(now)})
    records = [
        validate({"id": str(uuid.uuid4()), "type": "report", "ts": iso(now),
                  "report_id": str(uuid.uuid4()),
                  "staff_id": staff, "category": category, "note": "spill by the door",
                  "zone": "hall-a", "photos": [digest] if n == 1 else [], "taken_at": iso(now)})
        for n, (staff, category) in enumerate((("S001", "hygiene"), ("S002", "safety")), 1)]
    write_batch(db, "rounds/v1/test/node/hall-a-1/up/batch", "hall-a-1", records, [])
    tickets.materialize(db)
    ids = {t["department"]: t["id"] for t in tickets.list_tickets(db)}
    tickets.transition(db, ids[REVIEWED], "assigned", "setup")
    tickets.transition(db, ids[OTHER], "assigned", "setup")
    entries = {e["staff_id"]: e["id"] for e in hours.entries(db, state="pending")}
    _survey(db, now)
    _contest(db, now)
    _attended(db, now)
    _registration(db, now)
    record_id = _record_entry(db, now)
    return {
        "event_id": "ev-1", "ticket_id": ids[REVIEWED], "other_ticket_id": ids[OTHER],
        "entry_id": entries["S001"], "other_entry_id": entries["S002"],
        "staff_id": "S001", "other_staff_id": "S002", "device": "0123456789abcdef",
        "zone": "hall-a", "node": "hall-a-1", "plan_id": plan, "sha256": digest,
        "department": REVIEWED, "dept": REVIEWED, "code": "en", "fmt": "csv",
        "username": "office-user", "task_id": "ward-survey", "questionnaire_id": "inpatient",
        "contest_id": "contest-1", "act": "a1", "step": "open", "record_id": record_id,
        "draft_lang": "zh", "doc_fmt": "docx", "year_fmt": "pdf",
    }


def _record_entry(db, now) -> int:
    """S001's own record entry, waiting at the first (department) level."""
    today = now.astimezone(record_entries.HOSPITAL_TZ).date().isoformat()
    with db.conn:
        entry = record_entries.file_entry(db, "S001", "good_deed", "帮助迷路的患者回到病区", "",
                                          today, who="S001", now=now)
    return entry["id"]


def _attended(db, now) -> None:
    """S001 checked in to ev-1 on the portal (no presence source watches hall-a:
    present), so that their certificate of attendance exists."""
    with db.conn:
        db["checkins"].insert({"id": "chk-world-s001", "node": "hall-a-1", "ts": iso(now),
                               "received_at": iso(now), "staff_id": "S001",
                               "event_id": "ev-1", "zone": "hall-a", "method": "portal"})


def _contest(db, now) -> None:
    """A contest on in hall-a, set up with two acts and a judge."""
    with db.conn:
        db["events"].insert({"id": "contest-1", "title": "Speech contest", "kind": "contest",
                             "zones": json.dumps(["hall-a"]),
                             "start": iso(now - timedelta(hours=1)),
                             "end": iso(now + timedelta(hours=1)), "credit_hours": 0})
        acts.set_up(db, "contest-1", acts.Rule(), [{"act": "a1", "title": "Act one"},
                                                   {"act": "a2", "title": "Act two"}], ["S001"])


def _registration(db, now) -> None:
    """ev-1 takes registration for one place: S001 registered, S002 waiting."""
    with write_transaction(db):
        registration.configure(db, "ev-1", {"opens_at": now - timedelta(days=2),
                                            "closes_at": now + timedelta(hours=1), "capacity": 1})
        registration.register(db, "ev-1", "S001", now - timedelta(days=1))
        registration.register(db, "ev-1", "S002", now - timedelta(hours=12))


def _survey(db, now) -> None:
    """A questionnaire, an open survey task on hall-a and one response to it."""
    with db.conn:
        questionnaires.save(db, "inpatient", "住院患者满意度", [
            {"id": "overall", "kind": "scale", "label": "总体满意度"},
            {"id": "comment", "kind": "text", "label": "意见建议"}], "setup")
        tasks.save(db, {"id": "ward-survey", "title": "病区测评", "questionnaire": "inpatient",
                        "version": None, "zones": ["hall-a"], "target": 10,
                        "opens_at": iso(now - timedelta(hours=1)),
                        "closes_at": iso(now + timedelta(days=7)), "surveyors": ["S001"],
                        "alert": None}, "setup")
    write_batch(db, "rounds/v1/test/node/hall-a-1/up/batch", "hall-a-1", [validate({
        "id": str(uuid.uuid4()), "type": "survey_response", "ts": iso(now),
        "task_id": "ward-survey", "questionnaire": "inpatient", "version": 1,
        "staff_id": "S001", "zone": "hall-a", "taken_at": iso(now),
        "answers": {"overall": 4, "comment": "安静"}})], [])
