"""The API of the "surveys" area (blueprint ``surveys_api``, under /api/v1):
the survey tasks with their totals (``/api/v1/surveys``), one task's results
(``/api/v1/surveys/<task_id>``), the questionnaires (``/api/v1/questionnaires``,
``/api/v1/questionnaires/<id>``: GET the latest or ``?version=``; POST saves
a version, 201 new, 200 unchanged, audited) and their OpenAPI fragment. The
pages are hub/web/surveys.py; who reads which task is hub/web/surveys_scope.py
(a department reviewer: the tasks touching their department's wards).
"""

from datetime import datetime, timezone

from flask import Blueprint, Flask, abort, jsonify, request
from flask_login import current_user

from hub.db import write_transaction
from hub.surveys import questionnaires, results
from hub.surveys.questionnaires import QuestionnaireError
from protocol.surveys import KINDS

from hub.web import openapi
from hub.web.auth import audited, requires
from hub.web.context import get_db, hospital_tz
from hub.web.params import json_object, number
from hub.web.surveys_scope import known_questionnaire, summaries, visible_task

api = Blueprint("surveys_api", __name__, url_prefix="/api/v1")
_TOTALS = ("count", "target", "progress", "index", "open")


def init_app(app: Flask) -> None:
    app.register_blueprint(api)


@api.get("/surveys")
@requires("office", "dept_reviewer")
def list_tasks():
    """The tasks the reader may see, open ones first, each with its totals."""
    return jsonify([{**task, **{k: summary[k] for k in _TOTALS}}
                    for task, summary in summaries(get_db())])


@api.get("/surveys/<task_id>")
@requires("office", "dept_reviewer")
def task_summary(task_id):
    """``{"task", "summary", "by_department"}``: ``hub.surveys.results.summary``
    and its weekly index folded by department."""
    task = visible_task(task_id)
    summary = results.summary(get_db(), task, hospital_tz(), datetime.now(timezone.utc))
    return jsonify(task=task, summary=summary,
                   by_department=results.index_by_department(summary["weekly"]))


@api.get("/questionnaires")
@requires("office")
def list_questionnaires():
    return jsonify(questionnaires.latest_all(get_db()))


@api.get("/questionnaires/<questionnaire_id>")
@requires("office")
def get_questionnaire(questionnaire_id):
    """The latest version, or ``?version=``; ``versions`` lists them all."""
    latest = known_questionnaire(questionnaire_id)
    wanted = request.args.get("version")
    if wanted is not None and not 0 < (number(wanted) or 0) <= latest["version"]:
        abort(404, description=f"questionnaire {questionnaire_id} has no version {wanted}")
    form = questionnaires.get(get_db(), questionnaire_id, int(wanted)) if wanted else latest
    return jsonify({**form, "versions": list(range(latest["version"], 0, -1))})


@api.post("/questionnaires/<questionnaire_id>")
@requires("office")
def save_questionnaire(questionnaire_id):
    """Body ``{"title", "title_en"?, "questions"}``: 201 with a new version,
    200 when nothing changed, 400 with the reason."""
    body = json_object()
    db = get_db()
    try:
        with write_transaction(db):
            before = questionnaires.get(db, questionnaire_id)
            version = questionnaires.save(db, questionnaire_id, body.get("title"),
                                          body.get("questions"), current_user.username,
                                          body.get("title_en"))
            created = before is None or version != before["version"]
            if created:
                audited("questionnaire.save", f"questionnaire:{questionnaire_id}",
                        version=version, title=body["title"].strip(), via="api",
                        questions=[q["id"] for q in questionnaires.get(
                            db, questionnaire_id, version)["questions"]])
    except QuestionnaireError as exc:
        return jsonify(error=str(exc)), 400
    form = questionnaires.get(db, questionnaire_id, version)
    return jsonify({**form, "versions": list(range(version, 0, -1))}), 201 if created else 200


# -- OpenAPI --------------------------------------------------------------------------

_ref, _ok = openapi.ref, openapi.json_response
_STR, _INT, _NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}
_COUNTS = {"type": "object", "additionalProperties": _INT}
_OPTION = {"type": "object", "required": ["id", "label"],
           "properties": {"id": _STR, "label": _STR, "label_en": openapi.NULLABLE_STR}}
_QUESTION = {
    "type": "object", "required": ["id", "kind", "label"],
    "properties": {"id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
                   "kind": {"enum": list(KINDS)}, "label": _STR,
                   "label_en": openapi.NULLABLE_STR, "required": {"type": "boolean"},
                   "options": {"type": "array", "items": _OPTION}}}
_TASK_PROPS = {
    "id": _STR, "title": _STR, "questionnaire": _STR, "version": _INT,
    "zones": {"type": "array", "items": _STR}, "target": _INT,
    "opens_at": _STR, "closes_at": _STR, "surveyors": {"type": "array", "items": _STR},
    "alert": {"oneOf": [{"type": "null"}, {
        "type": "object", "required": ["question", "at_most", "category"],
        "properties": {"question": _STR, "at_most": _INT, "category": _STR}}]},
    "created_at": _STR, "created_by": _STR}
_TOTAL_PROPS = {"count": _INT, "target": _INT,
                "progress": {"type": "number", "minimum": 0, "maximum": 1},
                "index": {"type": ["number", "null"], "description": "0-100, null before any "
                                                                     "1-5 answer"},
                "open": {"type": "boolean", "description": "the window is on now"}}
_TASK_ID = openapi.path_param("task_id")
_QID = openapi.path_param("questionnaire_id")

OPENAPI = {
    "paths": {
        "/api/v1/surveys": {"get": {
            "summary": "Survey tasks with their totals, open ones first (a reviewer: those "
                       "touching their department's wards)", "tags": ["surveys"],
            "responses": {"200": _ok("Survey tasks", {"type": "array",
                                                      "items": _ref("SurveyTaskTotals")}),
                          **openapi.SIGNED_IN}}},
        "/api/v1/surveys/{task_id}": {"get": {
            "summary": "One task's results: totals, answers per question, index by week",
            "tags": ["surveys"], "parameters": [_TASK_ID],
            "responses": {"200": _ok("The results", _ref("SurveyResults")),
                          **openapi.errors(404), **openapi.SIGNED_IN}}},
        "/api/v1/questionnaires": {"get": {
            "summary": "The latest version of every questionnaire", "tags": ["surveys"],
            "responses": {"200": _ok("Questionnaires", {"type": "array",
                                                        "items": _ref("Questionnaire")}),
                          **openapi.SIGNED_IN}}},
        "/api/v1/questionnaires/{questionnaire_id}": {
            "get": {"summary": "A questionnaire: the latest version or ?version=",
                    "tags": ["surveys"],
                    "parameters": [_QID, openapi.query("version", "a version number")],
                    "responses": {"200": _ok("The version", _ref("QuestionnaireVersions")),
                                  **openapi.errors(404), **openapi.SIGNED_IN}},
            "post": {"summary": "Save a questionnaire: a new version when anything changed "
                                "(office, admin)", "tags": ["surveys"], "parameters": [_QID],
                     "requestBody": openapi.json_request(_ref("QuestionnaireInput")),
                     "responses": {"201": _ok("The new version", _ref("QuestionnaireVersions")),
                                   "200": _ok("Unchanged: the latest version",
                                              _ref("QuestionnaireVersions")),
                                   **openapi.errors(400), **openapi.SIGNED_IN}}},
    },
    "schemas": {
        "SurveyTask": {"type": "object", "required": list(_TASK_PROPS),
                       "properties": _TASK_PROPS},
        "SurveyTaskTotals": {"allOf": [_ref("SurveyTask"), {
            "type": "object", "required": list(_TOTAL_PROPS), "properties": _TOTAL_PROPS}]},
        "SurveyResults": {
            "type": "object", "required": ["task", "summary", "by_department"],
            "properties": {
                "task": _ref("SurveyTask"),
                "summary": {
                    "type": "object",
                    "required": [*_TOTAL_PROPS, "by_zone", "by_surveyor", "questions", "weekly"],
                    "properties": {
                        **_TOTAL_PROPS, "by_zone": _COUNTS, "by_surveyor": _COUNTS,
                        "questions": {"type": "array", "items": {"allOf": [_QUESTION, {
                            "type": "object", "required": ["answered"],
                            "properties": {"answered": _INT, "counts": _COUNTS,
                                           "mean": {"type": ["number", "null"]},
                                           "texts": {"type": "array", "items": _STR}}}]}},
                        "weekly": {"type": "array", "items": {
                            "type": "object",
                            "required": ["week", "zone", "department", "count", "index"],
                            "properties": {"week": _STR, "zone": _STR,
                                           "department": openapi.NULLABLE_STR,
                                           "count": _INT, "index": openapi.NULLABLE_NUM}}}}},
                "by_department": {"type": "array", "items": {
                    "type": "object", "required": ["week", "department", "count", "index"],
                    "properties": {"week": _STR, "department": {
                        "type": "string", "description": "the ward's id when it has none"},
                        "count": _INT, "index": openapi.NULLABLE_NUM}}}}},
        "Questionnaire": {
            "type": "object",
            "required": ["id", "version", "title", "title_en", "questions", "created_at",
                         "created_by"],
            "properties": {"id": _STR, "version": _INT, "title": _STR,
                           "title_en": openapi.NULLABLE_STR,
                           "questions": {"type": "array", "items": _QUESTION},
                           "created_at": _STR, "created_by": _STR}},
        "QuestionnaireVersions": {"allOf": [_ref("Questionnaire"), {
            "type": "object", "required": ["versions"],
            "properties": {"versions": {"type": "array", "items": _INT,
                                        "description": "every version, newest first"}}}]},
        "QuestionnaireInput": {
            "type": "object", "required": ["title", "questions"],
            "properties": {"title": {"type": "string", "maxLength": questionnaires.MAX_LABEL},
                           "title_en": openapi.NULLABLE_STR,
                           "questions": {"type": "array", "items": _QUESTION, "minItems": 1}}},
    },
}
