"""What the hub holds about one person, and when each kind is removed: the
staff member's right to know (PIPL art. 44), shown on their own page (/me).

Counts only, read across the areas that hold the data (people, ingest,
tickets, the audit log); the periods come from the hub's retention settings
(hub/retention.py), so the page says what the job will really do.
"""

N_ = str  # marks a message for extraction; translated where it is shown

_NEVER = N_("Kept as the hospital's rules say (no period set).")


def _rule(days: int | None, rule: str, **params) -> tuple[str, dict]:
    return (_NEVER, {}) if days is None else (rule, {"days": days, **params})


def held_about(db, staff_id: str, policy: dict) -> list[dict]:
    """One row per kind: ``what`` and ``rule`` (N_ messages, ``params`` fill
    ``rule``), ``count`` and ``oldest`` (a wire timestamp, or None)."""
    devices = "SELECT device FROM devices WHERE staff_id = :s"
    queries = (
        (N_("Phones bound to you (a keyed hash of the phone's address, never the address)"),
         (N_("Kept while the phone is bound; removed when you or the office unbind it."), {}),
         "SELECT count(*), min(bound_at) FROM devices WHERE staff_id = :s"),
        (N_("Wi-Fi sightings of your bound phone (presence intervals)"),
         _rule(policy["presence_days"], N_("Removed %(days)d days after the sighting; the "
                                           "attendance they proved is kept.")),
         "SELECT count(*), min(first_seen) FROM presence WHERE staff_id = :s "
         f"OR (staff_id IS NULL AND device IN ({devices}))"),
        (N_("Check-ins"),
         _rule(policy["attendance_days"], N_("Removed %(days)d days after the check-in.")),
         "SELECT count(*), min(ts) FROM checkins WHERE staff_id = :s"),
        (N_("Reports you filed, with their photos"),
         _rule(policy["resolved_ticket_photos_days"],
               N_("The text stays with the ticket; photos are removed %(days)d days after "
                  "the ticket is resolved.")),
         "SELECT count(*), min(taken_at) FROM reports WHERE staff_id = :s"),
        (N_("Volunteer hours entries"),
         _rule(policy["attendance_days"], N_("Removed %(days)d days after the decision; "
                                             "pending entries are kept.")),
         "SELECT count(*), min(created_at) FROM volunteer_ledger WHERE staff_id = :s"),
        (N_("Entries in your record (yours and the system's, with their reviews)"),
         (_NEVER, {}),
         "SELECT count(*), min(occurred_on) FROM record_entries WHERE staff_id = :s"),
        (N_("Audit log entries about your record (looks, exports, changes)"),
         _rule(policy["audit_log_days"], N_("Removed after %(days)d days (PIPL asks for at "
                                            "least three years).")),
         "SELECT count(*), min(at) FROM audit_log WHERE target = 'staff:' || :s"),
    )
    rows = []
    for what, (rule, params), sql in queries:
        count, oldest = db.conn.execute(sql, {"s": staff_id}).fetchone()
        rows.append({"what": what, "rule": rule, "params": params, "count": count,
                     "oldest": oldest})
    return rows
