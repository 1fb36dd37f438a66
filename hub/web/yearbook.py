"""Dashboard area "yearbook": a person's whole year in one click, and
certificates of attendance (hub/summaries/yearbook.py, hub/summaries/pdf.py).

- ``/me/year.<xlsx|pdf>`` (any account linked to a staff number) and
  ``/people/<staff_id>/year.<xlsx|pdf>`` (office; a reviewer for their
  department's staff, others 404): the year's attendance with check-in and
  check-out, volunteer hours, reports, approved record entries and
  assessment progress, a sheet (or a PDF section) each; ``?year=YYYY``
  (this year by default). Audited as ``export.person`` with the format.
- ``/me/certificate/<event_id>.pdf`` and
  ``/people/<staff_id>/certificate/<event_id>.pdf``: one A4 page for an event
  the person attended (verdict present); any other event is 404. Audited as
  ``export.certificate``.

A hub without a font with Chinese characters answers 503 saying what to
install.
"""

from datetime import datetime, timezone

from flask import Blueprint, Flask, abort
from flask_babel import gettext as _

from hub.attendance import exports
from hub.db import write_transaction
from hub.summaries import facts, pdf, yearbook
from hub.web import labels, personal
from hub.web.auth import audited, requires
from hub.web.context import get_db, hospital_tz

bp = Blueprint("yearbook", __name__)
FORMAT = "<any(xlsx, pdf):year_fmt>"
OPENAPI = {"paths": {}, "schemas": {}}  # pages only


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _pdf(make):
    try:
        return make()
    except pdf.FontMissing as exc:
        abort(503, description=str(exc))


def _year_file(staff_id: str, fmt: str):
    db, tz, year = get_db(), hospital_tz(), personal.year()
    try:
        data = facts.year_record(db, staff_id, year, tz)
    except exports.NotFound:
        abort(404, description=f"unknown staff member: {staff_id}")
    sheets = yearbook.year_sheets(data, tz, _)
    if fmt == "xlsx":
        body, mime = exports.write(sheets, "xlsx"), exports.XLSX_MIME
    else:
        title = _("%(name)s: the year %(year)s", name=data["record"]["staff"]["name"], year=year)
        body = _pdf(lambda: pdf.year_report(sheets, hospital=labels.site_name(), title=title,
                                            translate=_))
        mime = pdf.MIME
    with write_transaction(db):
        audited("export.person", f"staff:{staff_id}", format=fmt, year=year)
    return personal.download(body, mime, personal.filename("year", staff_id, year, fmt))


def _certificate(staff_id: str, event_id: str):
    db, tz = get_db(), hospital_tz()
    cert = yearbook.certificate(db, staff_id, event_id, tz)
    if cert is None:
        abort(404, description="no certificate: the person did not attend this event")
    department = cert["staff"]["department"] or ""
    zones = labels.zone_names(db)
    issued = datetime.now(timezone.utc).astimezone(tz).strftime("%Y-%m-%d")
    body = _pdf(lambda: pdf.certificate(
        cert, hospital=labels.site_name(),
        department=labels.department_names(db).get(department, department),
        place=", ".join(zones.get(z, z) for z in cert["event"]["zones"]), issued=issued,
        translate=_))
    with write_transaction(db):
        audited("export.certificate", f"staff:{staff_id}", event=event_id,
                number=cert["number"])
    return personal.download(body, pdf.MIME,
                             personal.filename("certificate", staff_id, event_id, "pdf"))


@bp.get(f"/me/year.{FORMAT}")
@requires(*personal.LINKED)
def me_export(year_fmt):
    return _year_file(personal.own_staff_id(), year_fmt)


@bp.get(f"/people/<staff_id>/year.{FORMAT}")
@requires("office", "dept_reviewer")
def person_export(staff_id, year_fmt):
    personal.visible_staff(staff_id)
    return _year_file(staff_id, year_fmt)


@bp.get("/me/certificate/<event_id>.pdf")
@requires(*personal.LINKED)
def me_certificate(event_id):
    return _certificate(personal.own_staff_id(), event_id)


@bp.get("/people/<staff_id>/certificate/<event_id>.pdf")
@requires("office", "dept_reviewer")
def person_certificate(staff_id, event_id):
    personal.visible_staff(staff_id)
    return _certificate(staff_id, event_id)
