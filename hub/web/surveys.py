"""Dashboard area "surveys": satisfaction surveys (满意度测评) taken on the
ward Wi-Fi. This module holds the pages (blueprint ``surveys``): the task
board (``/surveys/``, with the form that hands out a task), the
questionnaires (``/surveys/questionnaires/``: each save that changes
something is a new version), a task's live results (``/surveys/<task_id>``:
totals against the target, answers per question as SVG bars, free text
escaped, the satisfaction index per ward and per department by week) and its
exports (CSV, XLSX, audited).

Beside it: the API and its OpenAPI fragment (``/api/v1/surveys...``,
``/api/v1/questionnaires...``) in hub/web/surveys_api.py, which tasks a
request reads in hub/web/surveys_scope.py, the two forms' parsing and saving
in hub/web/surveys_forms.py, the charts and the export sheets in
hub/web/surveys_results.py.

Office and admin manage everything. A department reviewer reads the board,
the pages, the results and the exports of the tasks that touch a ward of
their department (``zones.department``); any other task answers 404, the
questionnaires and the forms 403. The rules, the numbers and the export
rows are ``hub.surveys``'; these modules parse requests and render.
"""

from datetime import datetime, timezone

from flask import (Blueprint, Flask, Response, flash, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.attendance import exports
from hub.db import write_transaction
from hub.people import roster
from hub.schedule import zones
from hub.surveys import questionnaires, results, tasks
from hub.surveys.questionnaires import QuestionnaireError
from protocol.surveys import SCALE

from hub.web import labels
from hub.web.auth import audited, requires
from hub.web.context import get_db, hospital_tz
from hub.web.surveys_forms import (EXAMPLE, blank_task, save_questionnaire, task_draft,
                                   typed_form, typed_questionnaire)
from hub.web.surveys_results import bars, sheets, shown, trend
from hub.web.surveys_scope import known_questionnaire, summaries, visible_task, ward_departments

bp = Blueprint("surveys", __name__)
N_ = str  # marks a message for extraction; translated where it is shown
FORMAT = "<any(csv, xlsx):fmt>"
REFRESH_SECONDS = 30  # the task page reloads itself while the task is open
KIND_LABELS = {"scale": _l("1-5 scale"), "single": _l("Single choice"),
               "multi": _l("Multiple choice"), "text": _l("Short text")}
OPENAPI = {"paths": {}, "schemas": {}}  # pages only: the API's is in surveys_api.py


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.context_processor
def _globals() -> dict:
    return {"kind_labels": KIND_LABELS, "shown": shown}


# -- the task board and its form --------------------------------------------------


def _render_board(typed: dict | None = None, problems=()):
    db = get_db()
    rows = summaries(db)
    forms = {(t["questionnaire"], t["version"]): questionnaires.get(
        db, t["questionnaire"], t["version"]) for t, _summary in rows}
    latest = questionnaires.latest_all(db)
    scales = sorted({(q["id"], shown(q)) for f in latest for q in f["questions"]
                     if q["kind"] == "scale"})
    return render_template(
        "surveys_board.html", rows=rows, forms_of=forms, typed=typed or blank_task(),
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
    draft, typed, problems = task_draft(db, request.form)
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


def _render_list(typed: dict, problem: str | None = None):
    return render_template("surveys_questionnaires.html",
                           forms=questionnaires.latest_all(get_db()), typed=typed,
                           problem=problem, example=EXAMPLE)


@bp.get("/surveys/questionnaires/", endpoint="questionnaires")
@requires("office")
def questionnaire_list():
    return _render_list(typed_questionnaire())


@bp.post("/surveys/questionnaires/", endpoint="create_questionnaire")
@requires("office")
def create_questionnaire():
    typed = typed_form()
    if questionnaires.get(get_db(), typed["id"]) is not None:
        problem = _("A questionnaire %(id)s already exists: change it on its own page.",
                    id=typed["id"])
        return _render_list(typed, problem), 400
    version, problem = save_questionnaire(typed["id"], typed)
    if problem:
        return _render_list(typed, problem), 400
    flash(_("Questionnaire %(id)s saved as version %(version)d.", id=typed["id"],
            version=version), "info")
    return redirect(url_for("surveys.questionnaire", questionnaire_id=typed["id"]), code=303)


def _render_questionnaire(form: dict, typed: dict, problem: str | None = None):
    return render_template("surveys_questionnaire.html", form=form,
                           versions=_versions(get_db(), form), typed=typed, problem=problem,
                           example=EXAMPLE)


@bp.get("/surveys/questionnaires/<questionnaire_id>", endpoint="questionnaire")
@requires("office")
def questionnaire_page(questionnaire_id):
    form = known_questionnaire(questionnaire_id)
    return _render_questionnaire(form, typed_questionnaire(form))


@bp.post("/surveys/questionnaires/<questionnaire_id>", endpoint="change_questionnaire")
@requires("office")
def change_questionnaire(questionnaire_id):
    form = known_questionnaire(questionnaire_id)
    typed = {**typed_form(), "id": questionnaire_id}
    version, problem = save_questionnaire(questionnaire_id, typed)
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


@bp.get("/surveys/<task_id>", endpoint="task")
@requires("office", "dept_reviewer")
def task_page(task_id):
    task = visible_task(task_id)
    db = get_db()
    summary = results.summary(db, task, hospital_tz(), datetime.now(timezone.utc))
    form = questionnaires.get(db, task["questionnaire"], task["version"])
    names, departments = labels.zone_names(db), labels.department_names(db)
    wards = ward_departments(db)
    by_department = results.index_by_department(summary["weekly"])
    for row in by_department:  # a ward without a department is its own line
        row["department"] = departments.get(row["department"]) or names.get(
            row["department"], row["department"])
    return render_template(
        "surveys_task.html", task=task, form=form, summary=summary,
        bars={q["id"]: bars(q) for q in summary["questions"] if "counts" in q},
        ward_trend=trend(summary["weekly"], "zone", names),
        department_trend=trend(by_department, "department", {}),
        zone_names=names, departments=departments, wards=wards,
        staff=roster.staff_by_id(db, task["surveyors"]),
        refresh=REFRESH_SECONDS if summary["open"] else None)


# -- exports ------------------------------------------------------------------------


@bp.get(f"/surveys/<task_id>/export.{FORMAT}", endpoint="export")
@requires("office", "dept_reviewer")
def export(task_id, fmt):
    task = visible_task(task_id)
    db = get_db()
    data = exports.write(sheets(db, task, fmt), fmt)
    with write_transaction(db):
        audited("export.survey", f"survey_task:{task_id}", format=fmt)
    response = Response(data, content_type=exports.MIME[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{exports.filename("survey", task_id, fmt)}"')
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
