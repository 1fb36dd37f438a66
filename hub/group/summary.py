"""What the group's side-by-side pages show of each campus, read from its
schema (``campuses``): the last 30 days' events, check-ins, attendance of the
events that expected people, survey responses and their satisfaction index,
the tickets open and overdue now, and the recurring hotspots."""

import json
from datetime import datetime, timedelta

from protocol.clock import iso
from protocol.surveys import check_answers

from hub.attendance.attendance import event_attendance
from hub.db import open_db
from hub.surveys import questionnaires, results
from hub.tickets import hotspots
from hub.tickets.tickets import OPEN_STATES

from .campuses import campus_dsn

RECENT = timedelta(days=30)
_OPEN = ", ".join(f"'{state}'" for state in OPEN_STATES)


def campus_summary(db, now: datetime) -> dict:
    """One campus's figures (its own hub database, or its schema of the group's)."""
    since, until = iso(now - RECENT), iso(now)

    def count(sql: str, *params) -> int:
        return db.conn.execute(sql, params).fetchone()[0]

    return {
        "events": count("SELECT count(*) FROM events WHERE start >= ? AND start <= ?",
                        since, until),
        "checkins": count("SELECT count(*) FROM checkins WHERE ts >= ? AND ts <= ?",
                          since, until),
        "attendance": attendance(db, since, until, now),
        "survey_responses": count("SELECT count(*) FROM survey_responses "
                                  "WHERE taken_at >= ? AND taken_at <= ?", since, until),
        "satisfaction": satisfaction(db, since, until),
        "tickets_open": count(f"SELECT count(*) FROM tickets WHERE state IN ({_OPEN})"),
        "tickets_overdue": count(f"SELECT count(*) FROM tickets WHERE state IN ({_OPEN}) "
                                 "AND due_at < ?", until),
        "hotspots": [{"zone": h["zone"], "category": h["category"], "recent": h["recent"]}
                     for h in hotspots.recurring(db, now)[:3]],
    }


def attendance(db, since: str, until: str, now: datetime) -> dict:
    """How the people the period's ended events expected (departments, named
    staff, registrations; ``hub.attendance``) came: ``events`` (those that
    expected anyone), ``expected`` (person-events), ``present``, ``partial``
    (late, or gone early) and ``rate``, the percentage present (None when no
    one was expected). Walk-ins are not in it: a rate of the expected only."""
    ids = [row[0] for row in db.conn.execute(
        'SELECT id FROM events e WHERE "end" >= ? AND "end" <= ? AND ('
        "EXISTS (SELECT 1 FROM event_expected x WHERE x.event_id = e.id) OR "
        "EXISTS (SELECT 1 FROM registrations r WHERE r.event_id = e.id "
        "AND r.state = 'registered')) ORDER BY start, id", (since, until))]
    expected = present = partial = 0
    for event_id in ids:
        for row in event_attendance(db, event_id, now):
            if row["expected"]:
                expected += 1
                present += row["status"] == "present"
                partial += row["status"] == "partial"
    return {"events": len(ids), "expected": expected, "present": present, "partial": partial,
            "rate": round(100 * present / expected, 1) if expected else None}


def satisfaction(db, since: str, until: str) -> float | None:
    """The satisfaction index (0-100, ``hub.surveys.results.score``) of the
    survey responses taken from ``since`` to ``until``, whatever their task;
    None without a scored answer."""
    forms: dict[tuple, dict | None] = {}
    scores = []
    for qid, version, answers in db.conn.execute(
            "SELECT questionnaire, version, answers FROM survey_responses "
            "WHERE taken_at >= ? AND taken_at <= ?", (since, until)):
        if (qid, version) not in forms:
            forms[(qid, version)] = questionnaires.get(db, qid, version)
        form = forms[(qid, version)]
        if form is None:
            continue  # a version this hub never had
        found = results.score(form, check_answers(form, json.loads(answers)).values)
        if found is not None:
            scores.append(found)
    return round(sum(scores) / len(scores), 1) if scores else None


def group_summary(group_dsn: str, campuses, now: datetime) -> list[dict]:
    """``{"site", "ready", **campus_summary}`` per campus, in the configured
    order; ``ready`` is False (and no figures) for a campus whose schema the
    group ingest has not made yet."""
    out = []
    for site in campuses:
        db = open_db(campus_dsn(group_dsn, site), migrate=False)
        try:
            ready = db.conn.execute("SELECT to_regclass('checkins') IS NOT NULL").fetchone()[0]
            out.append({"site": site, "ready": bool(ready),
                        **(campus_summary(db, now) if ready else {})})
        finally:
            db.close()
    return out
