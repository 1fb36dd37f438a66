"""Dashboard area "audit": the audit log for administrators (``/audit/``).

Who did or looked at what, when, newest first, filtered by who, action (or
a family of actions: ``staff.``), target and local dates. Read-only: the app
never changes a row of the log (``hub.audit``), and this page only reads it.
"""

from datetime import date, datetime, time, timedelta

from flask import Blueprint, Flask, abort, current_app, render_template, request

from hub import audit, retention
from protocol.clock import iso

from hub.web.auth import requires
from hub.web.context import get_db, hospital_tz

bp = Blueprint("audit_log", __name__)
OPENAPI = {"paths": {}, "schemas": {}}  # a page only
SHOWN = 500


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _day(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400, description=f"{name} must be a date, YYYY-MM-DD")


def _midnight(day: date) -> str:
    return iso(datetime.combine(day, time.min, tzinfo=hospital_tz()))


@bp.get("/audit/", endpoint="index")
@requires()
def index():
    """Admin only (``requires()`` with no role: admin passes every check)."""
    filters = {name: request.args.get(name, "").strip()[:100] or None
               for name in ("who", "action", "target")}
    start, end = _day("from"), _day("to")
    db = get_db()
    rows = audit.entries(db, SHOWN, **filters,
                         since=_midnight(start) if start else None,
                         until=_midnight(end + timedelta(days=1)) if end else None)
    return render_template("audit_log.html", rows=rows, actions=audit.actions(db),
                           filters={**filters, "from": start, "to": end}, shown=SHOWN,
                           kinds=retention.KINDS,
                           policy=retention.settings(current_app.config.get("RETENTION")))
