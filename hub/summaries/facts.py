"""The facts a summary is drafted from, queried from the record: plain
JSON-ready dicts (kept beside a saved draft in ``drafts.facts``).

**An event** (``event_facts``): title, kind, the local day and times in the
hospital's time zone, the place (its zones' names), the organiser (events
have none: the civility office of the site, by its names), credit hours;
**attended** = the people whose verdict is *present* (partial attendance is
counted apart, ``partial``), by department; the **attendance rate** =
registered people who attended / registered people when the event has
registrations, else expected people who attended / expected people, else
none; a contest's ranking (hub.contests.scoring); the reports filed in the
event's zones between its start and end, by category.

**A person's year** (``year_record``, ``year_facts``): the person's record
over the local calendar year (hub.attendance.exports.person_record: events
with check-in and check-out, credit hours, volunteer hours, reports), the
reports accepted (their ticket moved past *new*, not rejected), the
approved record entries and the assessment progress (hub.assessment).

Each name stored in two languages comes as ``name`` and ``name_en`` (the
stored name again where no English one was given).
"""

from collections import Counter
from datetime import datetime, timezone, tzinfo

from hub.assessment.progress import progress, year_bounds
from hub.attendance import attendance, exports
from hub.contests import scoring
from hub.fleet import site
from hub.people import roster
from hub.schedule import zones as zone_table
from hub.summaries import sources
from hub.tickets import categories
from hub.tickets.tickets import DEFAULT_DEPARTMENT
from protocol.clock import iso

ACCEPTED = ("assigned", "in_progress", "resolved", "closed")  # states of an accepted report
OFFICE_NAMES = ("文明办", "Civility office")  # when the departments table does not name it


def _names(db) -> tuple[dict, dict]:
    return roster.department_names(db), roster.department_names(db, "en")


def _local(stamp: str, tz: tzinfo) -> datetime:
    return attendance.parse_time(stamp).astimezone(tz)


def _day(moment: datetime) -> dict:
    return {"year": moment.year, "month": moment.month, "day": moment.day,
            "date": moment.strftime("%Y-%m-%d")}


def organiser(db) -> dict:
    """The civility office of the site, as ``{"name", "name_en"}``."""
    zh, en = _names(db)
    office = zh.get(DEFAULT_DEPARTMENT) or OFFICE_NAMES[0]
    stored_en = en.get(DEFAULT_DEPARTMENT)
    office_en = stored_en if stored_en != zh.get(DEFAULT_DEPARTMENT) else OFFICE_NAMES[1]
    name, name_en = site.name(db), site.name(db, "en")
    return {"name": f"{name}{office}" if name else office,
            "name_en": f"{office_en}, {name_en}" if name_en else office_en}


def _departments(rows: list[dict], zh: dict, en: dict) -> list[dict]:
    counts = Counter(r["department"] or "" for r in rows)
    return [{"department": code, "name": zh.get(code, code), "name_en": en.get(code, code),
             "attended": n}
            for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _rate(rows: list[dict], registered: set[str]) -> dict | None:
    present = {r["staff_id"] for r in rows if r["status"] == "present"}
    if registered:
        basis, base = "registration", registered
    else:
        basis, base = "expected", {r["staff_id"] for r in rows if r["expected"]}
    if not base:
        return None
    hit = len(base & present)
    return {"basis": basis, "base": len(base), "attended": hit,
            "percent": round(100 * hit / len(base), 1)}


def _contest(db, event: dict, now: datetime) -> list[dict] | None:
    if event["kind"] != "contest":
        return None
    found = scoring.ranking(db, event["id"], now)
    if found is None:
        return None
    return [{"rank": r["rank"], "title": r["title"], "performers": r["performers"] or "",
             "total": r["total"]} for r in found["rows"] if r["rank"] is not None]


def _reports(db, event: dict) -> dict:
    labels = categories.labels(db)
    counts = sources.reports_in(db, event["zones"], event["start"], event["end"])
    return {"total": sum(counts.values()),
            "by_category": [{"category": code, "label": labels.get(code) or code, "count": n}
                            for code, n in counts.items()]}


def event_facts(db, event_id: str, tz: tzinfo, now: datetime | None = None) -> dict | None:
    """The facts of one event as of ``now`` (see the module docstring), or
    None for an unknown event."""
    event = attendance.get_event(db, event_id)
    if event is None:
        return None
    now = now or datetime.now(timezone.utc)
    rows = attendance.attendance_of(db, event, now)
    start, end, moment = _local(event["start"], tz), _local(event["end"], tz), now.astimezone(tz)
    zh, en = _names(db)
    zone_zh, zone_en = zone_table.zone_names(db), zone_table.zone_names(db, "en")
    present = [r for r in rows if r["status"] == "present"]
    return {
        "event_id": event["id"], "title": event["title"], "event_kind": event["kind"],
        **_day(start), "start_time": start.strftime("%H:%M"), "end_time": end.strftime("%H:%M"),
        "ended": now >= attendance.parse_time(event["end"]),
        "as_of": iso(now), "as_of_date": moment.strftime("%Y-%m-%d"),
        "as_of_time": moment.strftime("%H:%M"),
        "place": [{"zone": z, "name": zone_zh.get(z, z), "name_en": zone_en.get(z, z)}
                  for z in event["zones"]],
        "organiser": organiser(db),
        "credit_hours": float(event["credit_hours"] or 0),
        "attended": len(present), "partial": sum(r["status"] == "partial" for r in rows),
        "absent": sum(r["status"] == "absent" for r in rows),
        "by_department": _departments(present, zh, en),
        "rate": _rate(rows, sources.registered(db, event_id)),
        "contest": _contest(db, event, now),
        "reports": _reports(db, event),
    }


def year_record(db, staff_id: str, year: int, tz: tzinfo, now: datetime | None = None) -> dict:
    """``{"year", "record", "entries", "assessment"}``: the person's record
    over the local ``year`` (``exports.person_record``), their approved record
    entries and their assessment progress rows. Raises ``exports.NotFound``
    for a staff id not in the roster."""
    now = now or datetime.now(timezone.utc)
    since, until = year_bounds(year, tz)
    record = exports.person_record(db, staff_id, since, until, now)
    rows = progress(db, year, tz, now, [staff_id]).get(staff_id, [])
    return {"year": year, "record": record, "entries": sources.approved_entries(db, staff_id, year),
            "assessment": rows}


def year_facts(db, year_data: dict, tz: tzinfo) -> dict:
    """The facts of a person's year from ``year_record``'s answer."""
    record, year = year_data["record"], year_data["year"]
    staff, totals = record["staff"], record["totals"]
    zh, en = _names(db)
    code = staff["department"] or ""
    present = [r for r in record["attendance"] if r["status"] == "present"]
    kinds = Counter(e["kind"] for e in year_data["entries"])
    items = [{"item": r["item"], "title": r["title"], "title_en": r["title_en"] or r["title"],
              "target": r["target"], "confirmed": r["confirmed"], "pending": r["pending"],
              "done": r["done"]} for r in year_data["assessment"]]
    return {
        "staff_id": staff["staff_id"], "name": staff["name"], "year": year,
        "department": {"department": code, "name": zh.get(code, code),
                       "name_en": en.get(code, code)},
        "attended": len(present), "partial": totals["partial"], "absent": totals["absent"],
        "events": [{"title": r["title"], **_day(_local(r["start"], tz)),
                    "credit_hours": r["credit_hours"]} for r in present],
        "credit_hours": totals["credit_hours"],
        "volunteer_hours": totals["hours_approved"],
        "volunteer_hours_pending": totals["hours_pending"],
        "reports": totals["reports"],
        "reports_accepted": sum(r["state"] in ACCEPTED for r in record["reports"]),
        "entries": len(year_data["entries"]),
        "entries_by_kind": [{"kind": k, "count": n} for k, n in
                            sorted(kinds.items(), key=lambda item: (-item[1], item[0]))],
        "assessment": items, "items": len(items), "items_done": sum(i["done"] for i in items),
    }
