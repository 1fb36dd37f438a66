"""Dashboard area "surveys": satisfaction surveys (满意度测评) taken on the
ward Wi-Fi. The task board (``/surveys/``, with the form that hands out a
task), the questionnaires (``/surveys/questionnaires/``: each save that
changes something is a new version), a task's live results
(``/surveys/<task_id>``: totals against the target, answers per question as
SVG bars drawn here, free text escaped, the satisfaction index per ward and
per department by week), its exports (CSV, XLSX, audited) and the API
(``/api/v1/surveys...``, ``/api/v1/questionnaires...``).

Office and admin manage everything. A department reviewer reads the board,
the pages, the results and the exports of the tasks that touch a ward of
their department (``zones.department``); any other task answers 404, the
questionnaires and the forms 403. The rules, the numbers and the export
rows are ``hub.surveys``'; this module parses requests and renders.
"""

import json
from datetime import datetime, timezone

from flask import (Blueprint, Flask, Response, abort, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.attendance import exports
from hub.db import write_transaction
from hub.people import roster
from hub.schedule import zones
from hub.schedule.events import split_staff_ids
from hub.surveys import questionnaires, results, tasks
from hub.surveys.questionnaires import QuestionnaireError
from protocol.clock import iso
from protocol.surveys import KINDS, SCALE

from hub.web import labels, openapi
from hub.web.auth import audited, department_scope, requires
from hub.web.context import get_db, hospital_tz
from hub.web.i18n import lang
from hub.web.params import json_object, number

bp = Blueprint("surveys", __name__)
api = Blueprint("surveys_api", __name__, url_prefix="/api/v1")
N_ = str  # marks a message for extraction; translated where it is shown
FORMAT = "<any(csv, xlsx):fmt>"
REFRESH_SECONDS = 30  # the task page reloads itself while the task is open
_FORM_TIME = "%Y-%m-%dT%H:%M"
KIND_LABELS = {"scale": _l("1-5 scale"), "single": _l("Single choice"),
               "multi": _l("Multiple choice"), "text": _l("Short text")}
# The questions of the example shown beside the questionnaire form.
EXAMPLE = json.dumps([
    {"id": "overall", "kind": "scale", "label": "总体满意度",
     "label_en": "Overall satisfaction"},
    {"id": "liked", "kind": "multi", "label": "满意的方面", "label_en": "What went well",
     "required": False, "options": [{"id": "nurses", "label": "护士", "label_en": "Nurses"},
                                    {"id": "quiet", "label": "安静", "label_en": "Quiet"}]},
    {"id": "comment", "kind": "text", "label": "意见建议", "label_en": "Suggestions"},
], ensure_ascii=False, indent=2)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


@bp.context_processor
def _globals() -> dict:
    return {"kind_labels": KIND_LABELS, "shown": shown}


def shown(item: dict, key: str = "label") -> str:
    """A questionnaire's title or a question's label in the reader's language."""
    english = item.get(f"{key}_en")
    return english if lang() == "en" and english else item[key]


# -- who reads which task --------------------------------------------------------


def _ward_departments(db) -> dict[str, str | None]:
    return {z["zone"]: z["department"] for z in zones.list_zones(db)}


def _readable(task: dict, wards: dict) -> bool:
    """Office and admin read every task; a reviewer those touching a ward of
    their department."""
    scope = department_scope()
    return scope is None or any(wards.get(zone) == scope for zone in task["zones"])


def _visible_task(task_id: str) -> dict:
    db = get_db()
    task = tasks.get(db, task_id)
    if task is None or not _readable(task, _ward_departments(db)):
        abort(404, description=f"unknown survey task: {task_id}")
    return task


def _summaries(db) -> list[tuple[dict, dict]]:
    """(task, summary) of every task the reader may see, open ones first."""
    wards, now, tz = _ward_departments(db), datetime.now(timezone.utc), hospital_tz()
    found = [(t, results.summary(db, t, tz, now)) for t in tasks.all_tasks(db)
             if _readable(t, wards)]
    return sorted(found, key=lambda pair: not pair[1]["open"])  # stable: newest first


# -- the task board and its form --------------------------------------------------


def _blank_task() -> dict:
    return {"id": "", "title": "", "questionnaire": "", "zones": [], "target": "",
            "opens_at": "", "closes_at": "", "surveyors": "", "alert_question": "",
            "alert_at_most": "2", "alert_category": "service"}


def _wall_clock(text: str) -> str | None:
    """A datetime-local value, wall-clock in the hospital's zone, as a wire time."""
    try:
        value = datetime.strptime(text.strip(), _FORM_TIME)
    except ValueError:
        return None
    return iso(value.replace(tzinfo=hospital_tz()))


def _task_draft(db, form) -> tuple[dict, dict, list[str]]:
    """(draft for ``hub.surveys.tasks.save``, the form as typed, what is wrong
    with it already, translated)."""
    typed = {name: form.get(name, "").strip() for name in _blank_task() if name != "zones"}
    typed["zones"] = form.getlist("zones")
    problems = []
    target = number(typed["target"])
    if target is None:
        problems.append(_("The target is a number of responses from 1 to %(max)d.",
                          max=tasks.MAX_TARGET))
    times = {name: _wall_clock(typed[name]) for name in ("opens_at", "closes_at")}
    if None in times.values():
        problems.append(_("Write the time as YYYY-MM-DD HH:MM."))
    surveyors = split_staff_ids(typed["surveyors"])
    unknown = sorted(set(surveyors) - set(roster.staff_by_id(db, surveyors)))
    if unknown:
        problems.append(_("Not on the roster: %(ids)s.", ids=", ".join(unknown)))
    alert = None
    if typed["alert_question"]:
        alert = {"question": typed["alert_question"],
                 "at_most": number(typed["alert_at_most"]),
                 "category": typed["alert_category"]}
    draft = {"id": typed["id"], "title": typed["title"],
             "questionnaire": typed["questionnaire"], "version": None,
             "zones": typed["zones"], "target": target, **times, "surveyors": surveyors,
             "alert": alert}
    return draft, typed, problems


def _render_board(typed: dict | None = None, problems=()):
    db = get_db()
    rows = _summaries(db)
    forms = {(t["questionnaire"], t["version"]): questionnaires.get(
        db, t["questionnaire"], t["version"]) for t, _summary in rows}
    latest = questionnaires.latest_all(db)
    scales = sorted({(q["id"], shown(q)) for f in latest for q in f["questions"]
                     if q["kind"] == "scale"})
    return render_template(
        "surveys_board.html", rows=rows, forms_of=forms, typed=typed or _blank_task(),
        problems=problems, forms=latest, scales=scales, wards=zones.list_zones(db),
        zone_names=labels.zone_names(db), categories=labels.category_labels(db),
        manages=current_user.may("office"), scale=range(SCALE[0], SCALE[1]))


@bp.get("/surveys/", endpoint="board")
@requires("office", "dept_reviewer")
def board():
    return _render_board()


@bp.post("/surveys/", endpoint="create_task")
@requires("office")
def create_task():
    db = get_db()
    draft, typed, problems = _task_draft(db, request.form)
    if problems:
        return _render_board(typed, problems), 400
    try:
        with write_transaction(db):
            if tasks.get(db, draft["id"]) is not None:  # save() would replace it
                raise QuestionnaireError(N_("A survey task %(id)s already exists."),
                                         id=draft["id"])
            task = tasks.save(db, draft, current_user.username)
            audited("survey_task.create", f"survey_task:{task['id']}", responses=task["target"],
                    **{k: task[k] for k in ("title", "questionnaire", "version", "zones",
                                            "opens_at", "closes_at", "surveyors", "alert")})
    except QuestionnaireError as exc:
        return _render_board(typed, [_(exc.message, **exc.params)]), 400
    flash(_("Survey task %(title)s handed out.", title=task["title"]), "info")
    return redirect(url_for("surveys.task", task_id=task["id"]), code=303)


# -- questionnaires -----------------------------------------------------------------


def _versions(db, form: dict) -> list[dict]:
    """Every version of a questionnaire, newest first."""
    return [questionnaires.get(db, form["id"], v) for v in range(form["version"], 0, -1)]


def _typed_questionnaire(form: dict | None = None) -> dict:
    if form is None:
        return {"id": "", "title": "", "title_en": "", "questions": EXAMPLE}
    return {"id": form["id"], "title": form["title"], "title_en": form["title_en"] or "",
            "questions": json.dumps(form["questions"], ensure_ascii=False, indent=2)}


def _save_questionnaire(qid: str, typed: dict) -> tuple[int | None, str | None]:
    """(the version saved, None) or (None, the reason, translated)."""
    try:
        questions = json.loads(typed["questions"])
    except ValueError as exc:
        return None, _("The questions are not valid JSON (line %(line)d, column %(column)d).",
                       line=exc.lineno, column=exc.colno)
    db = get_db()
    try:
        with write_transaction(db):
            before = questionnaires.get(db, qid)
            version = questionnaires.save(db, qid, typed["title"], questions,
                                          current_user.username, typed["title_en"] or None)
            if before is None or version != before["version"]:
                form = questionnaires.get(db, qid, version)
                audited("questionnaire.save", f"questionnaire:{qid}", version=version,
                        title=form["title"], questions=[q["id"] for q in form["questions"]])
    except QuestionnaireError as exc:
        return None, _(exc.message, **exc.params)
    return version, None


def _typed_form() -> dict:
    return {name: request.form.get(name, "").strip() for name in ("id", "title", "title_en")} | {
        "questions": request.form.get("questions", "")}


def _render_list(typed: dict, problem: str | None = None):
    return render_template("surveys_questionnaires.html",
                           forms=questionnaires.latest_all(get_db()), typed=typed,
                           problem=problem, example=EXAMPLE)


@bp.get("/surveys/questionnaires/", endpoint="questionnaires")
@requires("office")
def questionnaire_list():
    return _render_list(_typed_questionnaire())


@bp.post("/surveys/questionnaires/", endpoint="create_questionnaire")
@requires("office")
def create_questionnaire():
    typed = _typed_form()
    if questionnaires.get(get_db(), typed["id"]) is not None:
        problem = _("A questionnaire %(id)s already exists: change it on its own page.",
                    id=typed["id"])
        return _render_list(typed, problem), 400
    version, problem = _save_questionnaire(typed["id"], typed)
    if problem:
        return _render_list(typed, problem), 400
    flash(_("Questionnaire %(id)s saved as version %(version)d.", id=typed["id"],
            version=version), "info")
    return redirect(url_for("surveys.questionnaire", questionnaire_id=typed["id"]), code=303)


def _render_questionnaire(form: dict, typed: dict, problem: str | None = None):
    return render_template("surveys_questionnaire.html", form=form,
                           versions=_versions(get_db(), form), typed=typed, problem=problem,
                           example=EXAMPLE)


def _known_questionnaire(qid: str) -> dict:
    form = questionnaires.get(get_db(), qid)
    if form is None:
        abort(404, description=f"unknown questionnaire: {qid}")
    return form


@bp.get("/surveys/questionnaires/<questionnaire_id>", endpoint="questionnaire")
@requires("office")
def questionnaire_page(questionnaire_id):
    form = _known_questionnaire(questionnaire_id)
    return _render_questionnaire(form, _typed_questionnaire(form))


@bp.post("/surveys/questionnaires/<questionnaire_id>", endpoint="change_questionnaire")
@requires("office")
def change_questionnaire(questionnaire_id):
    form = _known_questionnaire(questionnaire_id)
    typed = {**_typed_form(), "id": questionnaire_id}
    version, problem = _save_questionnaire(questionnaire_id, typed)
    if problem:
        return _render_questionnaire(form, typed, problem), 400
    if version == form["version"]:
        flash(_("Nothing changed: the questionnaire stays at version %(version)d.",
                version=version), "info")
    else:
        flash(_("Questionnaire %(id)s saved as version %(version)d.", id=questionnaire_id,
                version=version), "info")
    return redirect(url_for("surveys.questionnaire", questionnaire_id=questionnaire_id),
                    code=303)


# -- one task's results ------------------------------------------------------------------


def _bars(question: dict) -> list[dict]:
    """A question's distribution as bars: label, count, share of the longest."""
    if question["kind"] == "scale":
        pairs = [(str(v), question["counts"][v]) for v in question["counts"]]
    else:
        pairs = [(shown(o), question["counts"][o["id"]]) for o in question["options"]]
    top = max((count for _label, count in pairs), default=0) or 1
    return [{"label": label, "count": count, "share": count / top} for label, count in pairs]


COLOURS = ("#1f5f8b", "#b3261e", "#2e7d32", "#b26a00", "#6a3d9a", "#00838f", "#5b6b7b")
CHART_W, CHART_H, CHART_LEFT, CHART_TOP, CHART_BOTTOM = 640, 220, 44, 12, 34


def _trend(weekly: list[dict], key: str, names: dict) -> dict:
    """Weekly index rows as a table and as lines on a 0-100 chart: ``weeks``,
    ``series`` (per ward or department: ``name``, ``values`` {week: (index,
    count)}, ``colour``, ``points`` [(x, y, index, week)]) and the axes."""
    weeks = sorted({row["week"] for row in weekly})
    values: dict[str, dict] = {}
    for row in weekly:
        values.setdefault(row[key], {})[row["week"]] = (row["index"], row["count"])
    first, plot_w = CHART_LEFT + 24, CHART_W - CHART_LEFT - 60
    plot_h = CHART_H - CHART_TOP - CHART_BOTTOM
    x = {week: first + n * plot_w / max(len(weeks) - 1, 1) for n, week in enumerate(weeks)}

    def y(index: float) -> float:
        return round(CHART_TOP + (100 - index) / 100 * plot_h, 1)

    series = []
    for n, (code, by_week) in enumerate(sorted(values.items())):
        points = [(round(x[w], 1), y(v[0]), v[0], w) for w, v in sorted(by_week.items())
                  if v[0] is not None]
        series.append({"name": names.get(code, code), "values": by_week, "points": points,
                       "colour": COLOURS[n % len(COLOURS)]})
    return {"weeks": weeks, "series": series, "width": CHART_W, "height": CHART_H,
            "left": CHART_LEFT, "right": CHART_W - 12, "bottom": CHART_H - CHART_BOTTOM,
            "ticks": [(y(v), v) for v in (0, 25, 50, 75, 100)],
            "labels": [(round(x[w], 1), w[5:]) for w in weeks]}


@bp.get("/surveys/<task_id>", endpoint="task")
@requires("office", "dept_reviewer")
def task_page(task_id):
    task = _visible_task(task_id)
    db = get_db()
    summary = results.summary(db, task, hospital_tz(), datetime.now(timezone.utc))
    form = questionnaires.get(db, task["questionnaire"], task["version"])
    names, departments = labels.zone_names(db), labels.department_names(db)
    wards = _ward_departments(db)
    by_department = results.index_by_department(summary["weekly"])
    for row in by_department:  # a ward without a department is its own line
        row["department"] = departments.get(row["department"]) or names.get(
            row["department"], row["department"])
    return render_template(
        "surveys_task.html", task=task, form=form, summary=summary,
        bars={q["id"]: _bars(q) for q in summary["questions"] if "counts" in q},
        ward_trend=_trend(summary["weekly"], "zone", names),
        department_trend=_trend(by_department, "department", {}),
        zone_names=names, departments=departments, wards=wards,
        staff=roster.staff_by_id(db, task["surveyors"]),
        refresh=REFRESH_SECONDS if summary["open"] else None)


# -- exports ------------------------------------------------------------------------


def _sheets(db, task: dict, fmt: str) -> list[exports.Sheet]:
    tz = hospital_tz()
    _header, rows = results.export_rows(db, task, tz)
    form = questionnaires.get(db, task["questionnaire"], task["version"])
    fixed = [_("Taken at"), _("Ward"), _("Survey taker"), _("Version")]
    headers = fixed + [f"{shown(q)} ({q['id']})" for q in form["questions"]]
    for row in rows:  # a time cell, not text, in the spreadsheet
        row[0] = datetime.strptime(row[0], "%Y-%m-%d %H:%M")
    sheets = [exports.Sheet(_("Responses"), headers, rows)]
    if fmt == "xlsx":
        summary = results.summary(db, task, tz, datetime.now(timezone.utc))
        sheets.append(exports.Sheet(_("Survey task"), [_("Item"), _("Value")], [
            [_("Task"), task["title"]], [_("Questionnaire"), f"{shown(form, 'title')} "
                                                         f"(v{form['version']})"],
            [_("Wards"), ", ".join(task["zones"])], [_("Target"), task["target"]],
            [_("Responses"), summary["count"]], [_("Satisfaction index"), summary["index"]],
            [_("Time zone"), str(tz)]]))
    return sheets


@bp.get(f"/surveys/<task_id>/export.{FORMAT}", endpoint="export")
@requires("office", "dept_reviewer")
def export(task_id, fmt):
    task = _visible_task(task_id)
    db = get_db()
    data = exports.write(_sheets(db, task, fmt), fmt)
    with write_transaction(db):
        audited("export.survey", f"survey_task:{task_id}", format=fmt)
    response = Response(data, content_type=exports.MIME[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{exports.filename("survey", task_id, fmt)}"')
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- API -----------------------------------------------------------------------------

_TOTALS = ("count", "target", "progress", "index", "open")


@api.get("/surveys")
@requires("office", "dept_reviewer")
def list_tasks():
    """The tasks the reader may see, open ones first, each with its totals."""
    return jsonify([{**task, **{k: summary[k] for k in _TOTALS}}
                    for task, summary in _summaries(get_db())])


@api.get("/surveys/<task_id>")
@requires("office", "dept_reviewer")
def task_summary(task_id):
    """``{"task", "summary", "by_department"}``: ``hub.surveys.results.summary``
    and its weekly index folded by department."""
    task = _visible_task(task_id)
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
    latest = _known_questionnaire(questionnaire_id)
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
