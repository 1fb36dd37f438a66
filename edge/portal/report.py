"""Snap-and-report: a category, a short note and one to four photos of a
problem, filed from a phone's camera (plain form upload, no JavaScript).

Every photo is made safe here, before anything is queued
(``edge.camera.pipeline``: verified by decoding, orientation applied,
metadata stripped, faces blurred, resized); a refused photo gets its 4xx
with the reason and nothing is written. The safe photos go to the spool
(``edge.photos``) and the ``report`` record, naming them by sha256, to the
outbox. The place is the node's zone; GPS only when a photo still carried it.

**Storage.** Photos are what fills a node's card; check-ins are a few hundred
bytes each. So the portal keeps a reserve for check-ins: a report is refused
with 507 ("storage is full") when writing its photos would leave less than
``DISK_RESERVE`` (``portal.disk_reserve``, default 32 MiB) free, counting each
photo twice (the photo itself, and as much again for what the database and its
write-ahead log need around it). The check is made before the photos are
processed (is the reserve still there at all?) and again with their exact
sizes. A write that fails anyway (another process filled the disk in between)
is rolled back, the photo files it wrote are removed, and the answer is the
same 507: nothing half-written, and the next report after space returns goes
through with nothing restarted. Reports already queued are never touched.
"""

import logging
import sqlite3
import uuid
from pathlib import Path

from flask import Blueprint, Flask, current_app, render_template, request
from flask_babel import gettext as _

from edge.camera.capture import CaptureError, capture_frame
from edge.camera.pipeline import MAX_BYTES, PhotoRejected, process
from edge.db import is_disk_full
from edge.health import disk_free
from edge.photos import PhotoSpool
from edge.state import CONFIG

from .auth import Refusal, authenticate
from .context import current_zone, get_db, get_outbox, get_state, node_clock
from .device import device_key, person, phone
from .i18n import redirect_to
from .render import message_page
from .writes import immediate

bp = Blueprint("report", __name__)
log = logging.getLogger(__name__)
MAX_PHOTOS = 4
MAX_NOTE = 2000


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


# The hub's config may list the categories (codes); these are the defaults.
CATEGORIES = {
    "hygiene": N_("Hygiene"), "facilities": N_("Facilities / repair"),
    "safety": N_("Safety"), "signage": N_("Signage"),
    "service": N_("Service attitude"), "queue": N_("Queue / order"),
}
STATES = {
    "waiting": N_("Sent, waiting for the hub"), "new": N_("New"),
    "assigned": N_("Assigned to the department"), "in_progress": N_("Being handled"),
    "resolved": N_("Resolved"), "closed": N_("Closed"), "rejected": N_("Rejected"),
}


def init_app(app: Flask) -> None:
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default, None, is no limit
        app.config["MAX_CONTENT_LENGTH"] = MAX_PHOTOS * MAX_BYTES + 1024 * 1024
    app.config.setdefault("PHOTO_DIR", str(Path(app.config["NODE_DB"]).parent / "photos"))
    app.register_blueprint(bp)


def categories() -> dict:
    codes = (get_state().get(CONFIG) or {}).get("categories") or list(CATEGORIES)
    return {code: _(CATEGORIES[code]) if code in CATEGORIES else code for code in codes}


def _form(status=200, error=None, values=None):
    current = phone()
    bound = current is not None and current.staff_id is not None
    page = render_template("report.html", categories=categories(), error=error,
                           values=values or {}, need_pin=not bound,
                           who=person(current.staff_id) if bound else None,
                           max_photos=MAX_PHOTOS,
                           camera=current_app.config.get("CAMERA_SOURCE") is not None)
    return page, status


@bp.get("/report")
def form():
    return _form()


@bp.post("/report")
def submit():
    values = {"category": request.form.get("category", ""),
              "note": request.form.get("note", "").strip(),
              "staff_id": request.form.get("staff_id", "").strip()}
    if values["category"] not in categories():
        return _form(400, _("Please choose what kind of problem it is."), values)
    if len(values["note"]) > MAX_NOTE:
        return _form(400, _("The note is too long (at most %(n)d characters).", n=MAX_NOTE),
                     values)
    use_camera = "camera" in request.form
    uploads = [f for f in request.files.getlist("photos") if f and f.filename]
    if use_camera and current_app.config.get("CAMERA_SOURCE") is None:
        return _form(400, _("This node has no camera."), values)
    if not use_camera and not 1 <= len(uploads) <= MAX_PHOTOS:
        return _form(400, _("Please add one to %(n)d photos.", n=MAX_PHOTOS), values)

    current = phone()
    if current is not None and current.staff_id is not None:
        staff_id, zone = current.staff_id, current_zone(get_state())
        if not zone:
            return message_page(503, _("Not ready yet"),
                                _("This node does not know its zone yet."))
    else:
        result = authenticate(request.form, device_key())
        if isinstance(result, Refusal):
            if result.whole_page:
                return message_page(result.status, _("Not ready yet"), result.message)
            return _form(result.status, result.message, values)
        staff_id, zone = result.staff_id, result.zone

    if not _room_for(0):
        return _storage_full(values)
    safe = []
    if use_camera:  # the node's own camera, through the same pipeline
        try:
            safe.append(process(capture_frame(current_app.config["CAMERA_SOURCE"], warmup=5)))
        except PhotoRejected as exc:
            if exc.status == 503:  # no face detector: say so, not "no picture"
                return _form(503, _(exc.message, **exc.params), values)
            log.warning("node camera: %s", exc)
            return _form(503, _("The node's camera did not give a picture; please use "
                                "your phone's camera."), values)
        except CaptureError as exc:
            log.warning("node camera: %s", exc)
            return _form(503, _("The node's camera did not give a picture; please use "
                                "your phone's camera."), values)
    for upload in uploads if not use_camera else ():
        try:
            safe.append(process(upload.read(MAX_BYTES + 1)))
        except PhotoRejected as exc:
            return _form(exc.status, _("Photo %(name)s was not accepted: %(reason)s",
                                        name=Path(upload.filename).name[:80],
                                        reason=_(exc.message, **exc.params)), values)
    if not _room_for(sum(len(photo.jpeg) for photo in safe)):
        return _storage_full(values)
    gps = next((photo.gps for photo in safe if photo.gps), None)
    report_id = str(uuid.uuid4())
    now = node_clock().now_iso()
    outbox = get_outbox()
    spool = PhotoSpool(outbox.db, current_app.config["PHOTO_DIR"])
    created = []  # spool files this report wrote: removed again if it is not queued
    try:
        with immediate(outbox.db):
            # files first, fsynced
            shas = [spool.put(photo.jpeg, report_id, created) for photo in safe]
            outbox.append({
                "type": "report", "report_id": report_id, "staff_id": staff_id,
                "category": values["category"], "note": values["note"] or None, "zone": zone,
                **({"lat": gps[0], "lon": gps[1]} if gps else {}),
                "photos": shas, "taken_at": now})
            outbox.db.conn.execute(
                "INSERT INTO local_reports (report_id, staff_id, category, note, photos, ts) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (report_id, staff_id, values["category"], values["note"], len(shas), now))
    except (sqlite3.OperationalError, OSError) as exc:
        spool.discard(created)
        if not is_disk_full(exc):
            raise
        log.warning("storage full: report refused (%s)", exc)
        return _storage_full(values)
    return redirect_to("report.mine", sent=report_id)


def _room_for(photo_bytes: int) -> bool:
    """Whether ``photo_bytes`` of photos fit and leave the check-in reserve
    (see the module docstring), on the spool's and the database's file systems."""
    need = 2 * photo_bytes + current_app.config["DISK_RESERVE"]
    return min(disk_free(_existing(current_app.config["PHOTO_DIR"])),
               disk_free(Path(current_app.config["NODE_DB"]).parent)) >= need


def _existing(path) -> Path:
    """``path`` or its nearest existing parent (the spool is made on first use)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _storage_full(values):
    return _form(507, _("This node's storage is nearly full, so it cannot take photo "
                        "reports right now. Check-ins still work. Please try again later."),
                 values)


@bp.get("/reports")
def mine():
    """My reports: each with its ticket's state, as the hub last told this node.

    Filing a report ends here (``?sent=<report id>``) whoever filed it, so the
    page confirms a report just sent also to a phone that is not bound; its
    list needs a bound phone (the node lists a person's reports only to the
    phone bound to them), and a phone the node knows is offered the binding.
    """
    current = phone()
    sent = _filed(request.args.get("sent"))
    if current is None or current.staff_id is None:
        return render_template("reports.html", person=None, reports=[], sent=sent,
                               can_bind=current is not None)
    states = {r.get("report_id"): r for r in (get_state().get(CONFIG) or {}).get("reports", [])}
    rows = get_db().conn.execute(
        "SELECT report_id, category, note, photos, ts FROM local_reports WHERE staff_id = ? "
        "ORDER BY ts DESC LIMIT 30", (current.staff_id,)).fetchall()
    reports = []
    for report_id, category, note, photos, ts in rows:
        ticket = states.get(report_id) or {}
        state = ticket.get("state", "waiting")
        reports.append({"report_id": report_id, "category": categories().get(category, category),
                        "note": note, "photos": photos, "ts": ts,
                        "state": _(STATES[state]) if state in STATES else state,
                        "state_code": state,
                        "duplicate": ticket.get("duplicate", False)})
    return render_template("reports.html", reports=reports, person=person(current.staff_id),
                           sent=sent, can_bind=False)


def _filed(report_id: str | None) -> bool:
    """Whether ``report_id`` names a report filed at this node (the one just sent)."""
    return bool(report_id) and get_db().conn.execute(
        "SELECT 1 FROM local_reports WHERE report_id = ?", (report_id,)).fetchone() is not None
