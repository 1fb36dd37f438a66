"""Progress against the year's assessment items, per person and department,
computed from the record on every look.

What feeds an item (hub/assessment/items.py): events attended (status
``present``, hub/attendance), approved volunteer hours (hub/tickets/hours.py)
and record entries (hub/records). Only what has passed the review chain
counts as **confirmed**: a fact the system made an entry for
(``record_entries`` with ``source = 'system'`` and ``source_ref`` =
``attendance:<event>:<staff>`` or ``hours:<ledger id>``) counts once that
entry is approved, is dropped when it was rejected, and until then, or while
no entry exists yet, shows as **pending** review; a person's own entries
likewise. ``done`` = confirmed >= target. Someone is **behind** when what they
have, pending included, is less than the target times the share of the year
gone by.
"""

from collections import defaultdict
from datetime import date, datetime, timezone, tzinfo

from hub.assessment.items import of_year, target_for
from hub.attendance.attendance import attendance_of, day_bounds, get_event, parse_time
from protocol.clock import iso


def attendance_ref(event_id: str, staff_id: str) -> str:
    return f"attendance:{event_id}:{staff_id}"


def hours_ref(entry_id: int) -> str:
    return f"hours:{entry_id}"


def year_bounds(year: int, tz: tzinfo) -> tuple[str, str]:
    return day_bounds(date(year, 1, 1), tz)[0], day_bounds(date(year, 12, 31), tz)[1]


def _review_states(db) -> dict[str, str]:
    return dict(db.conn.execute(
        "SELECT source_ref, state FROM record_entries WHERE source = 'system'"))


def facts(db, year: int, tz: tzinfo, now: datetime) -> dict[str, list[dict]]:
    """staff id -> what they did in ``year`` that an item may count:
    ``{"measure", "kind", "amount", "ref", "state"}`` with ``state`` one of
    approved / pending / rejected (after the review chain)."""
    since, until = year_bounds(year, tz)
    reviewed = _review_states(db)
    found: dict[str, list[dict]] = defaultdict(list)
    ids = [e for (e,) in db.conn.execute(
        "SELECT id FROM events WHERE start >= ? AND start < ? AND start <= ? ORDER BY start",
        (since, until, iso(now)))]
    for event in (get_event(db, event_id) for event_id in ids):
        for row in attendance_of(db, event, now):
            if row["status"] != "present":
                continue
            ref = attendance_ref(event["id"], row["staff_id"])
            found[row["staff_id"]].append({
                "measure": "attendance", "kind": event["kind"], "ref": ref,
                "amount": float(event["credit_hours"] or 0),
                "state": reviewed.get(ref, "pending")})
    for entry_id, staff_id, amount in db.conn.execute(
            "SELECT id, staff_id, hours FROM volunteer_ledger WHERE state = 'approved' "
            "AND decided_at >= ? AND decided_at < ?", (since, until)):
        ref = hours_ref(entry_id)
        found[staff_id].append({"measure": "volunteer_hours", "kind": None, "ref": ref,
                                "amount": float(amount), "state": reviewed.get(ref, "pending")})
    for staff_id, kind, state in db.conn.execute(
            "SELECT staff_id, kind, state FROM record_entries WHERE source = 'self' "
            "AND occurred_on >= ? AND occurred_on <= ?", (f"{year}-01-01", f"{year}-12-31")):
        found[staff_id].append({"measure": "entry", "kind": kind, "ref": None, "amount": 1.0,
                                "state": "pending" if state == "returned" else state})
    return found


def _counts(item: dict, fact: dict) -> float:
    """How much ``fact`` adds to ``item`` (0 when it does not feed it)."""
    measure, kinds = item["measure"], None
    if measure in ("credit_hours", "events"):
        if fact["measure"] != "attendance":
            return 0.0
        kinds = item["event_kinds"]
        amount = fact["amount"] if measure == "credit_hours" else 1.0
    elif measure == "volunteer_hours":
        return fact["amount"] if fact["measure"] == "volunteer_hours" else 0.0
    else:
        if fact["measure"] != "entry":
            return 0.0
        kinds = item["entry_kinds"]
        amount = 1.0
    return amount if not kinds or fact["kind"] in kinds else 0.0


def progress(db, year: int, tz: tzinfo, now: datetime | None = None,
             staff_ids=None) -> dict[str, list[dict]]:
    """staff id -> one row per item: ``item`` (id), ``title``, ``measure``,
    ``target``, ``confirmed``, ``pending``, ``ratio`` (confirmed / target, at
    most 1; 1 for a zero target) and ``done``; for everyone in the roster, or
    ``staff_ids``."""
    now = now or datetime.now(timezone.utc)
    items = of_year(db, year)
    done_facts = facts(db, year, tz, now)
    people = db.conn.execute("SELECT staff_id, department, role FROM staff ORDER BY staff_id")
    wanted = set(staff_ids) if staff_ids is not None else None
    result = {}
    for staff_id, department, role in people:
        if wanted is not None and staff_id not in wanted:
            continue
        rows = []
        for item in items:
            target = target_for(item, department, role)
            confirmed = pending = 0.0
            for fact in done_facts.get(staff_id, ()):
                amount = _counts(item, fact)
                if fact["state"] == "approved":
                    confirmed += amount
                elif fact["state"] == "pending":
                    pending += amount
            rows.append({"item": item["id"], "title": item["title"],
                         "title_en": item["title_en"], "measure": item["measure"],
                         "target": target, "confirmed": round(confirmed, 2),
                         "pending": round(pending, 2),
                         "ratio": 1.0 if target == 0 else round(min(1.0, confirmed / target), 3),
                         "done": confirmed >= target})
        result[staff_id] = rows
    return result


def year_gone(year: int, tz: tzinfo, now: datetime) -> float:
    """The share of ``year`` gone by at ``now`` (0 before it, 1 after it)."""
    start, end = (parse_time(t) for t in year_bounds(year, tz))
    return min(1.0, max(0.0, (now - start) / (end - start)))


def behind(db, year: int, tz: tzinfo, now: datetime | None = None) -> list[dict]:
    """Who is behind on which item, for reminders: ``{staff_id, department,
    item, title, have, expected_by_now, target}``, the furthest behind first."""
    now = now or datetime.now(timezone.utc)
    share = year_gone(year, tz, now)
    departments = departments_of_staff(db)
    late = []
    for staff_id, rows in progress(db, year, tz, now).items():
        for row in rows:
            have = row["confirmed"] + row["pending"]
            expected = round(row["target"] * share, 2)
            if have < expected:
                late.append({"staff_id": staff_id, "department": departments.get(staff_id),
                             "item": row["item"], "title": row["title"], "have": have,
                             "expected_by_now": expected, "target": row["target"]})
    return sorted(late, key=lambda r: (r["have"] - r["expected_by_now"], r["staff_id"]))


def departments_of_staff(db) -> dict[str, str]:
    """staff id -> department, for ``by_department``."""
    return dict(db.conn.execute("SELECT staff_id, department FROM staff"))


def by_department(progress_rows: dict[str, list[dict]], departments: dict[str, str]) -> list[dict]:
    """``progress`` folded per department and item: people, how many are done,
    the mean ratio."""
    folded: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0])
    for staff_id, rows in progress_rows.items():
        for row in rows:
            slot = folded[(departments.get(staff_id) or "", row["item"])]
            slot[0] += 1
            slot[1] += row["done"]
            slot[2] += row["ratio"]
    return [{"department": dept, "item": item, "people": n, "done": done,
             "mean_ratio": round(total / n, 3)}
            for (dept, item), (n, done, total) in sorted(folded.items())]
