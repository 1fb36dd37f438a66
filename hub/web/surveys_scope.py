"""Which survey tasks and questionnaires a request of the "surveys" area
reads (hub/web/surveys.py, hub/web/surveys_api.py). Office and admin read
every task; a department reviewer those touching a ward of their department
(``zones.department``): any other task answers 404, as does an unknown task
or questionnaire. Also the board's list: each readable task with its
summary, open ones first.
"""

from datetime import datetime, timezone

from flask import abort

from hub.schedule import zones
from hub.surveys import questionnaires, results, tasks

from hub.web.auth import department_scope
from hub.web.context import get_db, hospital_tz


def ward_departments(db) -> dict[str, str | None]:
    return {z["zone"]: z["department"] for z in zones.list_zones(db)}


def _readable(task: dict, wards: dict) -> bool:
    """Office and admin read every task; a reviewer those touching a ward of
    their department."""
    scope = department_scope()
    return scope is None or any(wards.get(zone) == scope for zone in task["zones"])


def visible_task(task_id: str) -> dict:
    db = get_db()
    task = tasks.get(db, task_id)
    if task is None or not _readable(task, ward_departments(db)):
        abort(404, description=f"unknown survey task: {task_id}")
    return task


def summaries(db) -> list[tuple[dict, dict]]:
    """(task, summary) of every task the reader may see, open ones first."""
    wards, now, tz = ward_departments(db), datetime.now(timezone.utc), hospital_tz()
    found = [(t, results.summary(db, t, tz, now)) for t in tasks.all_tasks(db)
             if _readable(t, wards)]
    return sorted(found, key=lambda pair: not pair[1]["open"])  # stable: newest first


def known_questionnaire(qid: str) -> dict:
    form = questionnaires.get(get_db(), qid)
    if form is None:
        abort(404, description=f"unknown questionnaire: {qid}")
    return form
