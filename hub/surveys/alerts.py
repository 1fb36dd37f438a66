"""A low score opens a supervision ticket for the ward, routed like a report.

A task's ``alert`` (hub/surveys/tasks.py) names a 1-5 question and a score at
or below which the ward's problem is the hospital's to fix. ``reports_for``
turns each such response into a report row; the ingest stores it in the same
transaction as the response, and ``hub.tickets.tickets.materialize`` routes it
(duplicates attach: several low scores on one ward within 30 minutes are one
ticket). Its ``report_id`` is ``survey:<response id>``, so the ticket's source
is ``survey`` and it earns the survey taker no volunteer hours.
"""

import json

PREFIX = "survey:"


def reports_for(db, responses: list[dict]) -> list[dict]:
    """Report records (``protocol.records`` "report" fields, plus ``id`` and
    ``ts``) for the ``survey_response`` records that trip their task's alert."""
    alerts: dict[str, dict | None] = {}
    found = []
    for r in responses:
        if r["task_id"] not in alerts:
            row = db.conn.execute("SELECT alert, title FROM survey_tasks WHERE id = ?",
                                  (r["task_id"],)).fetchone()
            alerts[r["task_id"]] = ({**json.loads(row[0]), "title": row[1]}
                                    if row and row[0] else None)
        alert = alerts[r["task_id"]]
        value = r["answers"].get(alert["question"]) if alert else None
        if isinstance(value, bool) or not isinstance(value, int) or value > alert["at_most"]:
            continue
        comment = next((v for v in r["answers"].values() if isinstance(v, str)), "")
        note = f"{alert['title']}: {alert['question']} = {value}" + (
            f" — {comment}" if comment else "")
        found.append({"id": r["id"], "type": "report", "ts": r["ts"],
                      "report_id": PREFIX + r["id"], "staff_id": r["staff_id"],
                      "category": alert["category"], "note": note[:2000], "zone": r["zone"],
                      "lat": None, "lon": None, "photos": [], "taken_at": r["taken_at"]})
    return found
