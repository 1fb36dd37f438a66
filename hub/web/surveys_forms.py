"""The forms of the "surveys" area (hub/web/surveys.py): the task form that
hands out a survey task (``/surveys/``: datetime-local times in the hospital's
zone, surveyors checked against the roster) and the questionnaire form (the
questions typed as JSON, ``EXAMPLE`` shown beside it; each save that changes
something is a new version, audited). Parsing and saving only; the pages
render.
"""

import json
from datetime import datetime

from flask import request
from flask_babel import gettext as _
from flask_login import current_user

from hub.db import write_transaction
from hub.people import roster
from hub.schedule.events import split_staff_ids
from hub.surveys import questionnaires, tasks
from hub.surveys.questionnaires import QuestionnaireError
from protocol.clock import iso

from hub.web.auth import audited
from hub.web.context import get_db, hospital_tz
from hub.web.params import number

_FORM_TIME = "%Y-%m-%dT%H:%M"
# The questions of the example shown beside the questionnaire form.
EXAMPLE = json.dumps([
    {"id": "overall", "kind": "scale", "label": "总体满意度",
     "label_en": "Overall satisfaction"},
    {"id": "liked", "kind": "multi", "label": "满意的方面", "label_en": "What went well",
     "required": False, "options": [{"id": "nurses", "label": "护士", "label_en": "Nurses"},
                                    {"id": "quiet", "label": "安静", "label_en": "Quiet"}]},
    {"id": "comment", "kind": "text", "label": "意见建议", "label_en": "Suggestions"},
], ensure_ascii=False, indent=2)


# -- the task form ------------------------------------------------------------------


def blank_task() -> dict:
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


def task_draft(db, form) -> tuple[dict, dict, list[str]]:
    """(draft for ``hub.surveys.tasks.save``, the form as typed, what is wrong
    with it already, translated)."""
    typed = {name: form.get(name, "").strip() for name in blank_task() if name != "zones"}
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


# -- the questionnaire form ---------------------------------------------------------


def typed_questionnaire(form: dict | None = None) -> dict:
    if form is None:
        return {"id": "", "title": "", "title_en": "", "questions": EXAMPLE}
    return {"id": form["id"], "title": form["title"], "title_en": form["title_en"] or "",
            "questions": json.dumps(form["questions"], ensure_ascii=False, indent=2)}


def typed_form() -> dict:
    return {name: request.form.get(name, "").strip() for name in ("id", "title", "title_en")} | {
        "questions": request.form.get("questions", "")}


def save_questionnaire(qid: str, typed: dict) -> tuple[int | None, str | None]:
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
