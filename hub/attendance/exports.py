"""People's records and exports: one person's attendance, volunteer hours and
reports, one event's attendance, written as CSV or XLSX.

Plain functions over a sqlite-utils ``Database`` (as ``hub.attendance``), so
the dashboard, the JSON API and ``rounds-hub export`` share them.

* ``person_record`` / ``event_rows``: the data, as JSON-ready dicts, with
  wire timestamps (UTC).
* ``person_sheets`` / ``event_sheets``: the same as ``Sheet`` tables, times
  turned into wall-clock datetimes of the hospital's time zone (spreadsheets
  have no time zones) and headers passed through ``translate`` (the web gives
  gettext, the CLI leaves them English).
* ``to_csv`` / ``to_xlsx``: the files. **CSV** is UTF-8 with a byte order mark
  (so Excel reads Chinese names right). One sheet is a plain CSV (header row,
  then rows); several sheets (a person's export) are written one after the
  other in the same file, each as a title row, its header row and its rows,
  with an empty row between them: one file that opens in Excel as it is.
  **XLSX** has one worksheet per sheet, a bold frozen header row, column
  widths fitted to the content, times as real date-time cells.

Formula injection: every text cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is written with a leading ``'`` (OWASP's
advice), in both formats, so that no spreadsheet evaluates a name or a note.
So is one that starts with their full-width or small forms (``＝`` U+FF1D,
``＋``, ``－``, ``＠``, ``﹦`` ...: a Chinese input method types these, and
spreadsheets read some as the ASCII ones) or with any of them after leading
white space (``" =1"``, ``"\u3000=1"``): the first character that is not white
space is compared after NFKC normalisation.
Numbers and times are written as such and never prefixed.
"""

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

from hub.attendance import attendance
from hub.tickets import hours
from protocol.clock import iso

N_ = str  # marks a message for extraction; translated where it is shown

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_STARTS = frozenset("=+-@")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
XLSX_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
CSV_MIME = "text/csv; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIME = {"csv": CSV_MIME, "xlsx": XLSX_MIME}
FORMATS = tuple(MIME)

STATUS_LABELS = {"present": N_("present"), "partial": N_("partial"), "absent": N_("absent")}
LEDGER_LABELS = {"pending": N_("pending"), "approved": N_("approved"),
                 "rejected": N_("rejected")}
TICKET_LABELS = {"new": N_("new"), "assigned": N_("assigned"), "in_progress": N_("in progress"),
                 "resolved": N_("resolved"), "closed": N_("closed"), "rejected": N_("rejected"),
                 "waiting": N_("waiting for photos")}


class NotFound(LookupError):
    """No staff member or event with that id."""


def _iso(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return iso(value)


# -- the data ----------------------------------------------------------------

def get_staff(db, staff_id: str) -> dict | None:
    """A roster entry without its PIN hash, or None."""
    row = db.conn.execute("SELECT staff_id, name, department, role FROM staff WHERE staff_id = ?",
                          (staff_id,)).fetchone()
    return dict(zip(("staff_id", "name", "department", "role"), row)) if row else None


_PERSON_EVENTS = """
    SELECT event_id FROM checkins WHERE staff_id = :staff AND event_id IS NOT NULL
    UNION SELECT event_id FROM event_expected WHERE kind = 'staff' AND value = :staff
    UNION SELECT event_id FROM event_expected WHERE kind = 'department' AND value = :department
    UNION SELECT event_id FROM registrations WHERE staff_id = :staff AND state = 'registered'
    UNION SELECT e.id FROM events e CROSS JOIN json_each(e.zones) z
        JOIN presence p ON p.zone = z.value AND p.last_seen >= e.start AND p.first_seen <= e."end"
        WHERE p.id IN (SELECT id FROM presence WHERE staff_id = :staff
                       UNION SELECT id FROM presence WHERE staff_id IS NULL AND device IN
                           (SELECT device FROM devices WHERE staff_id = :staff))
"""


def _person_events(db, staff: dict, since: str | None, until: str | None) -> list[dict]:
    """The events ``staff`` was expected at, registered for, checked in to or
    seen at (by their presence records or their bound phone's), by start."""
    ids = [row[0] for row in db.conn.execute(
        _PERSON_EVENTS, {"staff": staff["staff_id"], "department": staff["department"]})]
    events = [e for e in (attendance.get_event(db, i) for i in ids) if e is not None]
    events = [e for e in events if (since is None or e["start"] >= since)
              and (until is None or e["start"] < until)]
    return sorted(events, key=lambda e: (e["start"], e["id"]))


def _attendance_row(event: dict, row: dict) -> dict:
    present = row["status"] == "present"
    return {
        "event_id": event["id"], "title": event["title"], "kind": event["kind"],
        "zones": event["zones"], "start": event["start"], "end": event["end"],
        "status": row["status"], "expected": row["expected"], "method": row["method"],
        "checked_in_at": row["checked_in_at"], "first_seen": row["first_seen"],
        "last_seen": row["last_seen"], "dwell_minutes": row["dwell_minutes"],
        "late_minutes": row["late_minutes"], "early_leave_minutes": row["early_leave_minutes"],
        "credit_hours": float(event["credit_hours"] or 0) if present else 0.0,
    }


def _reports(db, staff_id: str, since: str | None, until: str | None) -> list[dict]:
    """Their reports (a report resent under a new record id counts once),
    newest first, with the ticket each became or joined."""
    where, params = ["r.staff_id = ?"], [staff_id]
    if since is not None:
        where.append("r.taken_at >= ?")
        params.append(since)
    if until is not None:
        where.append("r.taken_at < ?")
        params.append(until)
    sql = f"""
        SELECT r.report_id, min(r.taken_at), min(r.category), min(r.zone), min(r.note),
               min(tr.ticket_id), min(t.state), min(tr.duplicate), min(t.department)
        FROM reports r LEFT JOIN ticket_reports tr ON tr.report_id = r.report_id
        LEFT JOIN tickets t ON t.id = tr.ticket_id
        WHERE {' AND '.join(where)} GROUP BY r.report_id ORDER BY 2 DESC, r.report_id
    """
    return [{"report_id": rid, "taken_at": taken, "category": category, "zone": zone,
             "note": note, "ticket_id": ticket_id, "state": state or "waiting",
             "duplicate": bool(duplicate), "department": department}
            for rid, taken, category, zone, note, ticket_id, state, duplicate, department
            in db.conn.execute(sql, params)]


def _ledger(db, staff_id: str, since: str | None, until: str | None) -> list[dict]:
    """Their volunteer-hour entries, newest first, with the ticket's category and zone."""
    found = []
    for entry in hours.entries(db, staff_id, limit=1_000_000):
        if (since is not None and entry["created_at"] < since) or (
                until is not None and entry["created_at"] >= until):
            continue
        ticket = db.conn.execute("SELECT category, zone FROM tickets WHERE id = ?",
                                 (entry["ticket_id"],)).fetchone()
        found.append({**entry, "category": ticket[0] if ticket else None,
                      "zone": ticket[1] if ticket else None})
    return found


def person_record(db, staff_id: str, since=None, until=None,
                  now: datetime | None = None) -> dict:
    """``{"staff", "since", "until", "attendance", "hours", "reports",
    "totals"}`` for one person; ``since``/``until`` (datetimes or wire
    timestamps, either may be None) bound event starts, entry creation and
    report times, ``until`` excluded. Attendance is as of ``now``
    (``hub.attendance.attendance_of``). Raises NotFound for a staff id that
    is not in the roster."""
    staff = get_staff(db, staff_id)
    if staff is None:
        raise NotFound(f"unknown staff member: {staff_id}")
    since, until = _iso(since), _iso(until)
    rows = []
    for event in _person_events(db, staff, since, until):
        mine = [r for r in attendance.attendance_of(db, event, now) if r["staff_id"] == staff_id]
        if mine:
            rows.append(_attendance_row(event, mine[0]))
    ledger = _ledger(db, staff_id, since, until)
    reports = _reports(db, staff_id, since, until)
    totals = {"events": len(rows), **{s: sum(r["status"] == s for r in rows)
                                      for s in attendance.STATUSES},
              "credit_hours": round(sum(r["credit_hours"] for r in rows), 2),
              "dwell_minutes": round(sum(r["dwell_minutes"] for r in rows), 1),
              **{f"hours_{s}": round(sum(e["hours"] for e in ledger if e["state"] == s), 2)
                 for s in hours.ENTRY_STATES},
              "reports": len(reports)}
    return {"staff": staff, "since": since, "until": until, "attendance": rows,
            "hours": ledger, "reports": reports, "totals": totals}


def event_rows(db, event_id: str, now: datetime | None = None) -> dict:
    """``{"event", "counts", "attendance"}``: everyone's row for one event
    (``hub.attendance.attendance_report``) with ``credit_hours`` earned.
    Raises NotFound for an unknown event."""
    report = attendance.attendance_report(db, event_id, now)
    if report is None:
        raise NotFound(f"unknown event: {event_id}")
    credit = float(report["event"]["credit_hours"] or 0)
    for row in report["attendance"]:
        row["credit_hours"] = credit if row["status"] == "present" else 0.0
    return report


def _like(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def find_people(db, query: str | None = None, department: str | None = None,
                limit: int = 200) -> list[dict]:
    """Roster entries whose name or staff number contains ``query``, in
    ``department`` when given, by staff id, with their hours totals
    (``approved``, ``pending``)."""
    where, params = [], []
    if query:
        # lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not
        where.append("(lower(s.name) LIKE lower(?) ESCAPE '\\' "
                     "OR lower(s.staff_id) LIKE lower(?) ESCAPE '\\')")
        params += [_like(query), _like(query)]
    if department is not None:
        where.append("s.department = ?")
        params.append(department)
    sql = ("SELECT s.staff_id, s.name, s.department, "
           "coalesce(sum(CASE WHEN v.state = 'approved' THEN v.hours END), 0), "
           "coalesce(sum(CASE WHEN v.state = 'pending' THEN v.hours END), 0) "
           "FROM staff s LEFT JOIN volunteer_ledger v ON v.staff_id = s.staff_id")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " GROUP BY s.staff_id ORDER BY s.staff_id LIMIT ?"
    return [dict(zip(("staff_id", "name", "department", "approved", "pending"), row))
            for row in db.conn.execute(sql, params + [limit])]


def departments(db) -> list[str]:
    """Every department named in the roster or the departments table, sorted."""
    return [row[0] for row in db.conn.execute(
        "SELECT department FROM staff WHERE department IS NOT NULL AND department != '' "
        "UNION SELECT department FROM departments ORDER BY 1")]


# -- sheets --------------------------------------------------------------------

@dataclass
class Sheet:
    """A table to write: cells are text, numbers, wall-clock datetimes or None."""
    title: str
    headers: list[str]
    rows: list[list] = field(default_factory=list)


def _identity(text: str) -> str:
    return text


def _local(ts: str | None, tz: tzinfo) -> datetime | None:
    """A wire timestamp as a naive wall-clock datetime in ``tz`` (what a
    spreadsheet cell holds)."""
    if not ts:
        return None
    try:
        dt = attendance.parse_time(ts)
    except ValueError:
        return None
    return dt.astimezone(tz).replace(tzinfo=None, microsecond=0)


def _attendance_sheet(rows: list[dict], tz: tzinfo, _, person: bool) -> Sheet:
    who = [] if person else [N_("Staff ID"), N_("Name"), N_("Department")]
    what = [N_("Event ID"), N_("Title"), N_("Kind"), N_("Start"), N_("End")] if person else []
    headers = who + what + [N_("Status"), N_("Expected"), N_("Check-in method"),
                            N_("Check-in"), N_("First seen"), N_("Check-out (last seen)"),
                            N_("Minutes present"), N_("Minutes late"),
                            N_("Minutes left early"), N_("Credit hours")]
    sheet = Sheet(_(N_("Attendance")), [_(h) for h in headers])
    for r in rows:
        cells = ([r["staff_id"], r["name"], r["department"]] if not person else
                 [r["event_id"], r["title"], r["kind"], _local(r["start"], tz),
                  _local(r["end"], tz)])
        status = STATUS_LABELS[r["status"]]
        cells += [_(status), _(N_("yes")) if r["expected"] else _(N_("no")),
                  r["method"], _local(r["checked_in_at"], tz), _local(r["first_seen"], tz),
                  _local(r["last_seen"], tz), r["dwell_minutes"], r["late_minutes"],
                  r["early_leave_minutes"], r["credit_hours"]]
        sheet.rows.append(cells)
    return sheet


def person_sheets(record: dict, tz: tzinfo, translate=_identity) -> list[Sheet]:
    """A person's record as sheets: Summary, Attendance, Volunteer hours, Reports."""
    _ = translate
    staff, totals = record["staff"], record["totals"]
    summary = Sheet(_(N_("Summary")), [_(N_("Item")), _(N_("Value"))], [
        [_(N_("Staff ID")), staff["staff_id"]], [_(N_("Name")), staff["name"]],
        [_(N_("Department")), staff["department"]],
        [_(N_("From")), _local(record["since"], tz)], [_(N_("Until")), _local(record["until"], tz)],
        [_(N_("Time zone")), str(tz)],
        [_(N_("Events")), totals["events"]], [_(N_("Present")), totals["present"]],
        [_(N_("Partial")), totals["partial"]], [_(N_("Absent")), totals["absent"]],
        [_(N_("Credit hours from events")), totals["credit_hours"]],
        [_(N_("Volunteer hours approved")), totals["hours_approved"]],
        [_(N_("Volunteer hours pending")), totals["hours_pending"]],
        [_(N_("Reports")), totals["reports"]],
    ])
    ledger = Sheet(_(N_("Volunteer hours")), [_(h) for h in (
        N_("Entry"), N_("Ticket"), N_("Category"), N_("Zone"), N_("Hours"), N_("State"),
        N_("Credited"), N_("Decided by"), N_("Decided"))])
    for e in record["hours"]:
        state = LEDGER_LABELS.get(e["state"], e["state"])
        ledger.rows.append([e["id"], e["ticket_id"], e["category"], e["zone"], e["hours"],
                            _(state),
                            _local(e["created_at"], tz), e["decided_by"],
                            _local(e["decided_at"], tz)])
    reports = Sheet(_(N_("Reports")), [_(h) for h in (
        N_("Report"), N_("Reported"), N_("Category"), N_("Zone"), N_("Note"), N_("Ticket"),
        N_("Ticket state"), N_("Duplicate"))])
    for r in record["reports"]:
        state = TICKET_LABELS.get(r["state"], r["state"])
        reports.rows.append([r["report_id"], _local(r["taken_at"], tz), r["category"], r["zone"],
                             r["note"], r["ticket_id"], _(state),
                             _(N_("yes")) if r["duplicate"] else _(N_("no"))])
    return [summary, _attendance_sheet(record["attendance"], tz, _, person=True), ledger, reports]


def event_sheets(report: dict, tz: tzinfo, translate=_identity) -> list[Sheet]:
    """An event's export: Attendance (everyone's row; the main sheet) and Event."""
    _ = translate
    event, counts = report["event"], report["counts"]
    about = Sheet(_(N_("Event")), [_(N_("Item")), _(N_("Value"))], [
        [_(N_("Event ID")), event["id"]], [_(N_("Title")), event["title"]],
        [_(N_("Kind")), event["kind"]], [_(N_("Zones")), ", ".join(event["zones"])],
        [_(N_("Start")), _local(event["start"], tz)], [_(N_("End")), _local(event["end"], tz)],
        [_(N_("Credit hours")), event["credit_hours"]], [_(N_("Time zone")), str(tz)],
        [_(N_("Present")), counts["present"]], [_(N_("Partial")), counts["partial"]],
        [_(N_("Absent")), counts["absent"]], [_(N_("Expected")), counts["expected"]],
    ])
    return [_attendance_sheet(report["attendance"], tz, _, person=False), about]


# -- writers -------------------------------------------------------------------

def neutralise(value):
    """A text cell a spreadsheet would take for a formula, made plain text."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    first = value.lstrip()[:1]
    if first and unicodedata.normalize("NFKC", first)[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)
    if isinstance(value, bool):
        return str(value).lower()
    return neutralise(value) if isinstance(value, str) else value


def to_csv(sheets: list[Sheet]) -> bytes:
    """CSV bytes (UTF-8 with BOM): one sheet plainly, several as titled
    sections one after another (see the module docstring)."""
    out = io.StringIO()
    writer = csv.writer(out)
    for n, sheet in enumerate(sheets):
        if len(sheets) > 1:
            if n:
                writer.writerow([])
            writer.writerow([_csv_cell(sheet.title)])
        writer.writerow([_csv_cell(h) for h in sheet.headers])
        writer.writerows([_csv_cell(c) for c in row] for row in sheet.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


_SHEET_TITLE_BAD = re.compile(r"[\[\]:*?/\\]")


def _width(value) -> int:
    if isinstance(value, datetime):
        return len(TIME_FORMAT) + 2
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)  # CJK is double width


def to_xlsx(sheets: list[Sheet]) -> bytes:
    """An XLSX workbook: one worksheet per sheet, bold frozen header row,
    fitted column widths, times as date-time cells."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    used: set[str] = set()
    for sheet in sheets:
        title = _SHEET_TITLE_BAD.sub(" ", sheet.title)[:31].strip() or "Sheet"
        while title in used:
            title = title[:28] + f"~{len(used)}"
        used.add(title)
        ws = book.create_sheet(title)
        widths = [_width(h) for h in sheet.headers]
        ws.append([neutralise(ILLEGAL_CHARACTERS_RE.sub("", h)) for h in sheet.headers])
        for cell in ws[1]:
            cell.font = bold
        for row in sheet.rows:
            cells = []
            for i, value in enumerate(row):
                if isinstance(value, str):
                    value = neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))
                cells.append(value)
                if i < len(widths):
                    widths[i] = max(widths[i], _width(value))
            ws.append(cells)
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, datetime):
                    cell.number_format = XLSX_TIME_FORMAT
                elif isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula, whatever it looks like
        for i, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = min(max(width, 6) + 2, 60)
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


WRITERS = {"csv": to_csv, "xlsx": to_xlsx}


def write(sheets: list[Sheet], fmt: str) -> bytes:
    """``sheets`` as ``fmt`` (``csv`` or ``xlsx``); ValueError for another format."""
    if fmt not in WRITERS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    return WRITERS[fmt](sheets)


def filename(kind: str, ident: str, fmt: str, now: datetime | None = None) -> str:
    """A safe ASCII download name such as ``person-S001-20250310.xlsx``."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", ident).strip("_")[:40] or "export"
    day = (now or datetime.now(timezone.utc)).strftime("%Y%m%d")
    return f"{kind}-{safe}-{day}.{fmt}"
