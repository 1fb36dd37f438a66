"""My record: the owner of a bound phone sees their recent check-ins at this
node (newest first), their progress against the year's assessment items (as
the hub last sent it) and the phone's binding. Other phones are sent to the
start page: without a binding the node does not know whose record to show,
and it never shows one for a staff number typed in."""

from flask import Blueprint, Flask, render_template

from edge.checkins import NO_EVENT
from edge.state import ASSESSMENT, CONFIG

from .context import get_db, get_state
from .device import devices, person, phone
from .i18n import redirect_to

bp = Blueprint("me", __name__)
RECENT = 20


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/me")
def me():
    current = phone()
    if current is None or current.staff_id is None:
        return redirect_to("checkin.home")
    db = get_db()
    titles = {event.get("id"): event.get("title")
              for event in (get_state().get(CONFIG) or {}).get("events", [])}
    rows = db.conn.execute(
        "SELECT event_id, ts FROM local_checkins WHERE staff_id = ? "
        "ORDER BY ts DESC LIMIT ?", (current.staff_id, RECENT)).fetchall()
    # An event no longer in the node's schedule is shown by its id.
    checkins = [{"ts": ts, "no_event": key.startswith(NO_EVENT), "event_id": key,
                 "title": titles.get(key)} for key, ts in rows]
    return render_template("me.html", person=person(current.staff_id), checkins=checkins,
                           binding=devices().binding(current.device), device=current.device,
                           assessment=my_assessment(current.staff_id))


def my_assessment(staff_id: str) -> dict | None:
    """This person's progress against the year's assessment items, as the hub
    last sent it (``down/assessment``): ``{"year", "rows": [{"title",
    "title_en", "confirmed", "pending", "target"}]}``, or None."""
    document = get_state().get(ASSESSMENT) or {}
    items, values = document.get("items") or [], (document.get("people") or {}).get(staff_id)
    if not items or not isinstance(values, list) or len(values) != len(items):
        return None
    rows = [{"title": item.get("title"), "title_en": item.get("title_en"),
             "confirmed": v[0], "pending": v[1], "target": v[2]}
            for item, v in zip(items, values) if isinstance(v, list) and len(v) == 3]
    return {"year": document.get("year"), "rows": rows}
