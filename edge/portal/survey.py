"""Satisfaction surveys (满意度测评): a trained survey taker signs in with
staff number + PIN, sees the open survey tasks they are assigned to, and
fills one response per respondent (plain forms, no JavaScript).

The tasks come from the hub in the node's config (``"surveys"``: each task
with its questionnaire version as ``form``); a task is open while
``opens_at <= now < closes_at`` on the node's clock. A response is a
``survey_response`` record in the outbox, so surveys go on while the hub is
unreachable. Nothing about the respondent is kept: the record names the
survey taker, the zone and the answers only.

Signed in: the session cookie (signed with the portal's key) holds the
survey taker's staff number and when the sign-in lapses (8 hours on the
node's clock); "Sign out" clears it. A staff number that left the roster is
signed out. Only the task's assigned survey takers may fill it (403); an
unknown or closed task is 404 with the reason.

"Responses today" are counted in ``local_survey_counts`` (task, survey
taker, local day), written in the response's transaction; rows older than a
week are pruned then.

Routes: ``GET /survey`` (sign-in form, or the survey taker's open tasks),
``POST /survey`` (sign in), ``POST /survey-sign-out``,
``GET|POST /survey/<task_id>`` (the questionnaire; a saved response
redirects to an empty form for the next respondent). Sign-out is not under
``/survey/``, which is the task ids' namespace.
"""

import logging
from datetime import datetime, timedelta

from flask import Blueprint, Flask, render_template, request, session
from flask_babel import gettext as _
from flask_babel import ngettext

from edge.state import CONFIG
from protocol.clock import iso, parse_iso
from protocol.records import MAX_ANSWER_TEXT, InvalidRecord
from protocol.surveys import KINDS, SCALE, check_answers

from . import signin
from .auth import sentences
from .context import current_zone, get_db, get_outbox, get_state, node_clock
from .i18n import lang, redirect_to
from .render import local_time, message_page
from .writes import immediate

bp = Blueprint("survey", __name__)
log = logging.getLogger(__name__)
SIGNED_IN_FOR = timedelta(hours=8)
KEEP_COUNTS = timedelta(days=7)
FIELD = "q-"                 # form field of question <id>: "q-<id>"
_SIGNED_IN = "surveyor"      # session: {"staff_id", "until"}
_SAVED = "survey_saved"      # session: {"task", "count"}, shown once after a save


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


SCALE_LABELS = {1: N_("Very dissatisfied"), 2: N_("Dissatisfied"), 3: N_("Neutral"),
                4: N_("Satisfied"), 5: N_("Very satisfied")}
_SCALE_VALUES = {str(n): n for n in range(SCALE[0], SCALE[1] + 1)}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["survey_open"] = lambda: bool(open_tasks())


# --- the tasks in the node's config -------------------------------------------

def _usable(task) -> bool:
    """Whether a task from the config has what the pages and the record need."""
    if not isinstance(task, dict) or not isinstance(task.get("form"), dict):
        return False
    form = task["form"]
    return (isinstance(task.get("id"), str) and isinstance(form.get("id"), str)
            and isinstance(form.get("version"), int) and isinstance(form.get("questions"), list)
            and all(isinstance(q, dict) and isinstance(q.get("id"), str) and "required" in q
                    and q.get("kind") in KINDS for q in form["questions"]))


def _window(task: dict) -> tuple[datetime, datetime] | None:
    try:
        return parse_iso(task["opens_at"]), parse_iso(task["closes_at"])
    except (KeyError, ValueError):
        return None


def _all_tasks() -> list[dict]:
    tasks = (get_state().get(CONFIG) or {}).get("surveys") or []
    if not isinstance(tasks, list):
        tasks = [tasks]
    usable = [task for task in tasks if _usable(task) and _window(task)]
    if len(usable) != len(tasks):
        log.warning("%d survey task(s) in the node config cannot be used",
                    len(tasks) - len(usable))
    return usable


def _is_open(task: dict, now: datetime) -> bool:
    opens, closes = _window(task)
    return opens <= now < closes


def open_tasks() -> list[dict]:
    now = node_clock().now()
    return [task for task in _all_tasks() if _is_open(task, now)]


def _find(task_id: str) -> "dict | tuple":
    """The open task ``task_id``, or the 404 page saying why it is not."""
    task = next((t for t in _all_tasks() if t["id"] == task_id), None)
    if task is None:
        return message_page(404, _("Survey task not found"),
                            _("This node has no survey task %(id)s.", id=task_id[:64]))
    now = node_clock().now()
    opens, closes = _window(task)
    if now < opens:
        return message_page(404, _("This survey is not open yet"),
                            _("It opens on %(when)s.", when=_when(opens)))
    if now >= closes:
        return message_page(404, _("This survey is closed"),
                            _("It closed on %(when)s.", when=_when(closes)))
    return task


def _when(moment: datetime) -> str:
    return local_time(moment).strftime("%Y-%m-%d %H:%M")


def label(item: dict) -> str:
    """An item's label in the reader's language (Chinese when no English)."""
    if lang() == "en" and item.get("label_en"):
        return item["label_en"]
    return item.get("label") or item.get("id", "")


# --- who is signed in -----------------------------------------------------------

def signed_in() -> dict | None:
    """The roster entry of the survey taker signed in here, or None."""
    return signin.signed_in(_SIGNED_IN, SIGNED_IN_FOR)


def _signin_page(status=200, error=None, staff_id="", headers=None):
    page = render_template("survey_signin.html", error=error, staff_id=staff_id)
    return page, status, headers or {}


@bp.get("/survey")
def tasks():
    who = signed_in()
    if who is None:
        return _signin_page()
    mine = [t for t in open_tasks() if who["staff_id"] in (t.get("surveyors") or [])]
    counts = {task_id: (total, own) for task_id, total, own in get_db().conn.execute(
        "SELECT task_id, sum(count), sum(CASE WHEN staff_id = ? THEN count ELSE 0 END) "
        "FROM local_survey_counts WHERE day = ? GROUP BY task_id",
        (who["staff_id"], _today()))}
    shown = [{"id": t["id"], "title": t.get("title") or t["id"],
              "form_title": _form_title(t["form"]), "closes_at": t["closes_at"],
              "target": t.get("target"), "today": counts.get(t["id"], (0, 0))}
             for t in mine]
    return render_template("survey_tasks.html", who=who, tasks=shown)


@bp.post("/survey")
def sign_in():
    return signin.sign_in(_SIGNED_IN, SIGNED_IN_FOR, _signin_page, "survey.tasks")


@bp.post("/survey-sign-out")
def sign_out():
    signin.forget(_SIGNED_IN)
    session.pop(_SAVED, None)
    return redirect_to("survey.tasks")


# --- one task: the questionnaire and its responses -------------------------------

def _task_for(task_id: str, who: dict) -> "dict | tuple":
    """The open task ``task_id`` if ``who`` may fill it; else the page saying no."""
    task = _find(task_id)
    if not isinstance(task, dict):
        return task
    if who["staff_id"] not in (task.get("surveyors") or []):
        return message_page(403, _("You are not assigned to this survey"),
                            _("Only the survey takers the civility office assigned to this "
                              "task can fill it in."))
    return task


@bp.get("/survey/<task_id>")
def task_form(task_id):
    who = signed_in()
    if who is None:
        return redirect_to("survey.tasks")
    found = _task_for(task_id, who)
    if not isinstance(found, dict):
        return found
    saved, note = session.pop(_SAVED, None), None
    if isinstance(saved, dict) and saved.get("task") == task_id:
        count = saved.get("count", 0)
        note = sentences(ngettext("Saved: %(num)d response today.",
                                  "Saved: %(num)d responses today.", count),
                         _("The form is empty for the next respondent."))
    return _form_page(found, who, saved=note)


@bp.post("/survey/<task_id>")
def respond(task_id):
    who = signed_in()
    if who is None:
        return _signin_page(403, _("Please sign in again: your sign-in has ended. This "
                                   "response was not saved."))
    found = _task_for(task_id, who)
    if not isinstance(found, dict):
        return found
    zone = current_zone(get_state())
    if not zone:
        return message_page(503, _("Not ready yet"), _("This node does not know its zone yet."))
    form = found["form"]
    answers, kept = _posted(form)
    checked = check_answers(form, answers)
    if checked.problems:
        return _form_page(found, who, kept, checked.problems, answers, status=400)
    if not checked.values:
        return _form_page(found, who, kept, status=400,
                          error=_("Please answer at least one question."))
    try:
        count = _save(found, who["staff_id"], zone, checked.values)
    except InvalidRecord as exc:
        log.error("survey task %s: response not valid as a record: %s", task_id, exc)
        return message_page(500, _("This response cannot be saved"),
                            _("The survey task this node has is not valid. Please tell the "
                              "civility office."))
    session[_SAVED] = {"task": task_id, "count": count}
    return redirect_to("survey.task_form", task_id=task_id)


def _posted(form: dict) -> tuple[dict, dict]:
    """The posted answers as ``check_answers`` takes them, and as the form
    shows them again (option ids as posted, text as typed)."""
    answers, kept = {}, {}
    for q in form["questions"]:
        name = FIELD + q["id"]
        if q["kind"] == "text":
            text = request.form.get(name, "").replace("\r\n", "\n").strip()
            answers[q["id"]] = kept[q["id"]] = text
            continue
        values = [v for v in request.form.getlist(name) if v]
        kept[q["id"]] = answers[q["id"]] = values
        if q["kind"] == "scale" and len(values) == 1:
            # Not a number on the scale: passed as is, and check_answers names it.
            answers[q["id"]] = _SCALE_VALUES.get(values[0], values[0])
    return answers, kept


def _save(task: dict, staff_id: str, zone: str, answers: dict) -> int:
    """Queue the response and count it, in one transaction; returns the
    survey taker's responses to this task today at this node."""
    now = node_clock().now()
    today = _today(now)
    outbox = get_outbox()
    conn = outbox.db.conn
    with immediate(outbox.db):
        outbox.append({"type": "survey_response", "task_id": task["id"],
                       "questionnaire": task["form"]["id"],
                       "version": task["form"]["version"], "staff_id": staff_id,
                       "zone": zone, "answers": answers, "taken_at": iso(now)})
        conn.execute("DELETE FROM local_survey_counts WHERE day < ?",
                     (_today(now - KEEP_COUNTS),))
        conn.execute(
            "INSERT INTO local_survey_counts (task_id, staff_id, day, count) "
            "VALUES (?, ?, ?, 1) ON CONFLICT (task_id, staff_id, day) "
            "DO UPDATE SET count = count + 1", (task["id"], staff_id, today))
        (count,) = conn.execute(
            "SELECT count FROM local_survey_counts WHERE task_id = ? AND staff_id = ? "
            "AND day = ?", (task["id"], staff_id, today)).fetchone()
    return count


def _today(now: datetime | None = None) -> str:
    """The node's local date (its time zone), as the survey takers' day."""
    return local_time(now or node_clock().now()).date().isoformat()


def _form_title(form: dict) -> str:
    if lang() == "en" and form.get("title_en"):
        return form["title_en"]
    return form.get("title") or form["id"]


def _form_page(task, who, kept=None, problems=(), answers=None, status=200, error=None,
               saved=None):
    kept, answers = kept or {}, answers or {}
    questions = []
    for q in task["form"]["questions"]:
        note = None
        if q["id"] in problems:
            if answers.get(q["id"]) in (None, "", []):
                note = _("Please answer this question.")
            elif q["kind"] == "text":
                note = _("This answer is too long (at most %(n)d characters).",
                         n=MAX_ANSWER_TEXT)
            else:
                note = _("Please choose again: this answer is not one of the choices.")
        questions.append({
            "id": q["id"], "field": FIELD + q["id"], "kind": q["kind"], "label": label(q),
            "required": bool(q.get("required")), "note": note,
            "kept": kept.get(q["id"], "" if q["kind"] == "text" else []),
            "options": [(str(o.get("id")), label(o)) for o in q.get("options") or []
                        if isinstance(o, dict)]})
    page = render_template(
        "survey_form.html", task=task, form_title=_form_title(task["form"]), who=who,
        questions=questions, problems=[q for q in questions if q["note"]], error=error,
        saved=saved, max_text=MAX_ANSWER_TEXT,
        scale=[(str(n), _(text)) for n, text in SCALE_LABELS.items()])
    return page, status
