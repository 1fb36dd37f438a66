"""The API of the "records" area (blueprint ``records_api``, under /api/v1):
``GET /api/v1/records`` (the inbox, or ``?staff_id=`` a person's entries),
``GET /api/v1/records/<id>``, ``POST /api/v1/records`` (file one's own),
``POST /api/v1/records/<id>/decision``, ``POST
/api/v1/records/<id>/resubmit``, ``POST /api/v1/records/approve`` (bulk),
``GET /api/v1/me/records``, and their OpenAPI fragment. The pages are
hub/web/records.py, what both do hub/web/records_actions.py; an entry one
may not see answers 404, one seen but not decided by this account now 403
(409 once decided).
"""

from flask import Blueprint, Flask, abort, jsonify, request

from hub.records import entries, review
from hub.records.errors import RecordError

from hub.web import openapi
from hub.web import records_actions as actions
from hub.web.auth import audited_look, requires
from hub.web.context import get_db
from hub.web.params import json_object
from hub.web.records_actions import BULK_MAX, DECIDERS, LINKED, REVIEWERS

api = Blueprint("records_api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    app.register_blueprint(api)


def _api_error(exc: RecordError):
    abort(actions.status_of(exc), description=str(exc))


@api.get("/records")
@requires(*REVIEWERS)
def list_records():
    """The inbox ``{"staff_id": null, "levels", "entries"}``; with
    ``?staff_id=``, that person's entries (404 outside one's scope)."""
    db, settings, account = get_db(), actions.current_settings(), actions.current_account()
    box = review.inbox(db, account, settings)
    staff_id = request.args.get("staff_id") or None
    if staff_id is not None:
        try:
            box["entries"] = review.of_staff(db, account, staff_id, settings)
        except RecordError as exc:
            _api_error(exc)
        audited_look("person.view", f"staff:{staff_id}", page="records", via="api")
    return jsonify(staff_id=staff_id, **box)


@api.get("/records/<int:record_id>")
@requires(*LINKED)
def get_record(record_id):
    return jsonify(actions.detail(actions.visible(record_id)))


@api.post("/records")
@requires(*LINKED)
def file_record():
    """Body ``{"kind", "title", "body", "occurred_on"}``: one's own entry; 201."""
    actions.own_staff_id()
    body = json_object()
    try:
        entry = actions.file_entry({key: body.get(key) for key in actions.FIELDS})
    except RecordError as exc:
        _api_error(exc)
    return jsonify(actions.detail(entry)), 201


@api.post("/records/<int:record_id>/decision")
@requires(*DECIDERS)
def record_decision(record_id):
    """Body ``{"action": "approve"|"reject"|"return", "reason"}``."""
    body = json_object()
    try:
        entry = actions.decide(record_id, body.get("action"), body.get("reason") or "")
    except RecordError as exc:
        _api_error(exc)
    return jsonify(actions.detail(entry))


@api.post("/records/<int:record_id>/resubmit")
@requires(*LINKED)
def resubmit_record(record_id):
    """Body ``{"title", "body", "occurred_on"}``: a returned entry of one's own."""
    actions.own_staff_id()
    body = json_object()
    try:
        entry = actions.resubmit(record_id, {key: body.get(key) for key in actions.FIELDS})
    except RecordError as exc:
        _api_error(exc)
    return jsonify(actions.detail(entry))


@api.post("/records/approve")
@requires(*DECIDERS)
def approve_records():
    """Body ``{"ids": [...]}``: approve each one this account decides now."""
    ids = json_object().get("ids")
    if (not isinstance(ids, list) or not ids or len(ids) > BULK_MAX
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        abort(400, description=f"ids must be a list of 1 to {BULK_MAX} entry ids")
    done, refused = actions.approve_many(ids)
    return jsonify(approved=[e["id"] for e in done],
                   refused=[{"id": i, "status": actions.status_of(exc), "error": str(exc)}
                            for i, exc in refused])


@api.get("/me/records")
@requires(*LINKED)
def my_records():
    staff_id = actions.own_staff_id()
    return jsonify(staff_id=staff_id,
                   entries=[actions.detail(e) for e in entries.of_staff(get_db(), staff_id)])


# -- OpenAPI ---------------------------------------------------------------------------

_STR, _INT = {"type": "string"}, {"type": "integer"}
_ID = openapi.path_param("record_id", _INT)
_LEVEL = {"enum": list(review.LEVELS)}

OPENAPI = {
    "paths": {
        "/api/v1/records": {
            "get": {"summary": "A reviewer's inbox (counts per level, the entries waiting at "
                               "the levels they decide), or ?staff_id= a person's entries",
                    "parameters": [openapi.query("staff_id", "A person's entries instead")],
                    "responses": {"200": openapi.json_response("Entries",
                                                               openapi.ref("RecordList")),
                                  **openapi.errors(404), **openapi.SIGNED_IN}},
            "post": {"summary": "File an entry about oneself",
                     "requestBody": openapi.json_request(openapi.ref("NewRecord")),
                     "responses": {"201": openapi.json_response("Filed",
                                                                openapi.ref("RecordDetail")),
                                   **openapi.errors(400, 404), **openapi.SIGNED_IN}}},
        "/api/v1/records/{record_id}": {"get": {
            "summary": "An entry with its whole history",
            "parameters": [_ID],
            "responses": {"200": openapi.json_response("The entry", openapi.ref("RecordDetail")),
                          **openapi.errors(404), **openapi.SIGNED_IN}}},
        "/api/v1/records/{record_id}/decision": {"post": {
            "summary": "Approve, reject or send back an entry at its level",
            "parameters": [_ID],
            "requestBody": openapi.json_request(openapi.ref("RecordDecision")),
            "responses": {"200": openapi.json_response("The entry after",
                                                       openapi.ref("RecordDetail")),
                          **openapi.errors(400, 404, 409), **openapi.SIGNED_IN}}},
        "/api/v1/records/{record_id}/resubmit": {"post": {
            "summary": "Edit and resubmit one's own entry that was sent back",
            "parameters": [_ID],
            "requestBody": openapi.json_request(openapi.ref("RecordEdit")),
            "responses": {"200": openapi.json_response("The entry after",
                                                       openapi.ref("RecordDetail")),
                          **openapi.errors(400, 404, 409), **openapi.SIGNED_IN}}},
        "/api/v1/records/approve": {"post": {
            "summary": "Approve several entries; each is checked on its own",
            "requestBody": openapi.json_request({
                "type": "object", "required": ["ids"],
                "properties": {"ids": {"type": "array", "items": _INT, "minItems": 1,
                                       "maxItems": BULK_MAX}}}),
            "responses": {"200": openapi.json_response("What was approved and refused",
                                                       openapi.ref("RecordBulk")),
                          **openapi.errors(400), **openapi.SIGNED_IN}}},
        "/api/v1/me/records": {"get": {
            "summary": "One's own entries with their history",
            "responses": {"200": openapi.json_response("Entries", {
                "type": "object", "required": ["staff_id", "entries"],
                "properties": {"staff_id": _STR, "entries": {
                    "type": "array", "items": openapi.ref("RecordDetail")}}}),
                **openapi.SIGNED_IN}}},
    },
    "schemas": {
        "RecordEntry": {
            "type": "object",
            "required": [*entries.COLUMNS, "level_name", "overdue"],
            "properties": {
                "id": _INT, "staff_id": _STR, "kind": {"enum": list(entries.KINDS)},
                "title": _STR, "body": _STR, "occurred_on": {"type": "string", "format": "date"},
                "source": {"enum": ["self", "system"]}, "source_ref": openapi.NULLABLE_STR,
                "state": {"enum": list(entries.STATES)},
                "level": {"type": "integer", "description": "Index of the review level"},
                "level_name": _LEVEL, "due_at": openapi.NULLABLE_STR, "created_at": _STR,
                "updated_at": _STR, "overdue": {"type": "boolean"}}},
        "RecordStep": {
            "type": "object", "required": ["id", "level", "level_name", "who", "action",
                                           "reason", "at"],
            "properties": {"id": _INT, "level": {"type": ["integer", "null"]},
                           "level_name": {"enum": [*review.LEVELS, None]}, "who": _STR,
                           "action": {"enum": ["submit", "approve", "reject", "return",
                                               "resubmit"]},
                           "reason": _STR, "at": _STR}},
        "RecordDetail": {"allOf": [openapi.ref("RecordEntry"), {
            "type": "object", "required": ["history", "may_decide"],
            "properties": {"history": {"type": "array", "items": openapi.ref("RecordStep")},
                           "may_decide": {"type": "boolean"}}}]},
        "RecordLevel": {
            "type": "object", "required": ["level", "name", "pending", "overdue", "decides"],
            "properties": {"level": _INT, "name": _LEVEL, "pending": _INT, "overdue": _INT,
                           "decides": {"type": "boolean"}}},
        "RecordList": {
            "type": "object", "required": ["staff_id", "levels", "entries"],
            "properties": {"staff_id": openapi.NULLABLE_STR,
                           "levels": {"type": "array", "items": openapi.ref("RecordLevel")},
                           "entries": {"type": "array", "items": openapi.ref("RecordEntry")}}},
        "NewRecord": {
            "type": "object", "required": ["kind", "title", "occurred_on"],
            "properties": {"kind": {"enum": list(entries.SELF_KINDS)},
                           "title": {"type": "string", "maxLength": entries.TITLE_MAX},
                           "body": {"type": "string", "maxLength": entries.BODY_MAX},
                           "occurred_on": {"type": "string", "format": "date"}}},
        "RecordEdit": {
            "type": "object", "required": ["title", "occurred_on"],
            "properties": {"title": {"type": "string", "maxLength": entries.TITLE_MAX},
                           "body": {"type": "string", "maxLength": entries.BODY_MAX},
                           "occurred_on": {"type": "string", "format": "date"}}},
        "RecordDecision": {
            "type": "object", "required": ["action"],
            "properties": {"action": {"enum": list(review.ACTIONS)},
                           "reason": {"type": "string", "maxLength": review.REASON_MAX,
                                      "description": "Required to reject or send back"}}},
        "RecordBulk": {
            "type": "object", "required": ["approved", "refused"],
            "properties": {"approved": {"type": "array", "items": _INT},
                           "refused": {"type": "array", "items": {
                               "type": "object", "required": ["id", "status", "error"],
                               "properties": {"id": _INT, "status": _INT,
                                              "error": _STR}}}}},
    },
}
