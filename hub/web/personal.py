"""Request helpers of the pages about one person's year (summaries.py,
yearbook.py): whose record (one's own at ``/me``, another's on the people
pages, in a reviewer's department only), which year, and a download."""

import re
from datetime import datetime, timezone

from flask import Response, abort, request
from flask_login import current_user

from hub.attendance import exports
from hub.web.auth import OWN_RECORD, department_scope
from hub.web.context import get_db, hospital_tz

FIRST_YEAR, LAST_YEAR = 2000, 2100
LINKED = OWN_RECORD  # any account linked to a staff number has a year of its own


def own_staff_id() -> str:
    if not current_user.staff_id:
        abort(403, description="this account is not linked to a staff member")
    return current_user.staff_id


def visible_staff(staff_id: str) -> dict:
    """The roster entry; 404 unless it exists and is in a reviewer's department."""
    staff = exports.get_staff(get_db(), staff_id)
    scope = department_scope()
    if staff is None or (scope is not None and staff["department"] != scope):
        abort(404, description=f"unknown staff member: {staff_id}")
    return staff


def this_year() -> int:
    return datetime.now(timezone.utc).astimezone(hospital_tz()).year


def year() -> int:
    """``?year=YYYY``, else this year in the hospital's time zone."""
    text = request.args.get("year", "").strip()
    if not text:
        return this_year()
    if not text.isdigit() or not FIRST_YEAR <= int(text) <= LAST_YEAR:
        abort(400, description=f"year must be a year from {FIRST_YEAR} to {LAST_YEAR}")
    return int(text)


def filename(*parts) -> str:
    """A safe ASCII download name from ``parts`` and the extension (the last)."""
    *stem, ext = parts
    safe = "-".join(re.sub(r"[^A-Za-z0-9_-]+", "_", str(p)).strip("_")[:40] or "x" for p in stem)
    return f"{safe}.{ext}"


def download(data: bytes, mime: str, name: str) -> Response:
    response = Response(data, content_type=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
