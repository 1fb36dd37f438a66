"""A person's whole year in one file (XLSX through hub.attendance.exports,
PDF through hub.summaries.pdf): the sheets of the person export over the
local calendar year (Summary, Attendance with check-in and check-out,
Volunteer hours, Reports) and two more, the approved record entries and the
assessment progress; and the facts of a certificate of attendance.

Headers go through ``translate`` (the web gives gettext), as in
hub.attendance.exports.
"""

import hashlib
from datetime import tzinfo

from hub.attendance import attendance, exports
from hub.attendance.exports import Sheet
from hub.summaries.facts import ACCEPTED

N_ = str  # marks a message for extraction; translated where it is shown

ENTRY_KIND_LABELS = {
    "good_deed": N_("Good deed"), "thanks_letter": N_("Thank-you letter from a patient"),
    "complaint": N_("Complaint"), "study_reflection": N_("Study reflection"),
    "volunteering": N_("Volunteering outside Rounds"), "attendance": N_("Attended an event"),
    "volunteer_hours": N_("Volunteer hours approved"), "report": N_("Report accepted"),
}
SOURCE_LABELS = {"self": N_("Filed by the person"), "system": N_("Filed by Rounds")}


def _identity(text: str) -> str:
    return text


def year_sheets(year_data: dict, tz: tzinfo, translate=_identity) -> list[Sheet]:
    """``hub.summaries.facts.year_record``'s answer as sheets."""
    _ = translate
    record = year_data["record"]
    sheets = exports.person_sheets(record, tz, _)
    accepted = sum(r["state"] in ACCEPTED for r in record["reports"])
    progress = year_data["assessment"]
    sheets[0].rows[0:0] = [[_(N_("Year")), year_data["year"]]]
    sheets[0].rows += [[_(N_("Reports accepted")), accepted],
                       [_(N_("Approved record entries")), len(year_data["entries"])],
                       [_(N_("Assessment items done")), sum(r["done"] for r in progress)],
                       [_(N_("Assessment items")), len(progress)]]
    entries = Sheet(_(N_("Record entries")), [_(h) for h in (
        N_("Entry"), N_("Day"), N_("Kind"), N_("Title"), N_("Filed by"))])
    for e in year_data["entries"]:
        kind = ENTRY_KIND_LABELS.get(e["kind"])
        source = SOURCE_LABELS.get(e["source"])
        entries.rows.append([e["id"], e["occurred_on"], _(kind) if kind else e["kind"],
                             e["title"], _(source) if source else e["source"]])
    assessment = Sheet(_(N_("Assessment")), [_(h) for h in (
        N_("Item"), N_("Target"), N_("Confirmed"), N_("Pending review"), N_("Progress (%)"),
        N_("Done"))])
    for r in progress:
        assessment.rows.append([r["title"], r["target"], r["confirmed"], r["pending"],
                                round(100 * r["ratio"], 1),
                                _(N_("yes")) if r["done"] else _(N_("no"))])
    return sheets + [entries, assessment]


def certificate_number(event_id: str, staff_id: str, day: str) -> str:
    """The same number every time for one person at one event:
    ``RC-<local day>-<8 hex digits of a hash of both>``."""
    digest = hashlib.sha256(f"{event_id}\0{staff_id}".encode()).hexdigest()[:8].upper()
    return f"RC-{day.replace('-', '')}-{digest}"


def certificate(db, staff_id: str, event_id: str, tz: tzinfo, now=None) -> dict | None:
    """The facts of a certificate of attendance, or None unless the person
    attended the event (verdict *present*): ``staff``, ``event`` (title,
    zones, local ``date``, ``start_time``, ``end_time``), ``credit_hours``,
    ``number``."""
    staff = exports.get_staff(db, staff_id)
    event = attendance.get_event(db, event_id)
    if staff is None or event is None:
        return None
    rows = [r for r in attendance.attendance_of(db, event, now) if r["staff_id"] == staff_id]
    if not rows or rows[0]["status"] != "present":
        return None
    start = attendance.parse_time(event["start"]).astimezone(tz)
    end = attendance.parse_time(event["end"]).astimezone(tz)
    day = start.strftime("%Y-%m-%d")
    return {"staff": staff,
            "event": {"id": event["id"], "title": event["title"], "zones": event["zones"],
                      "date": day, "start_time": start.strftime("%H:%M"),
                      "end_time": end.strftime("%H:%M")},
            "credit_hours": float(event["credit_hours"] or 0),
            "number": certificate_number(event["id"], staff_id, day)}
