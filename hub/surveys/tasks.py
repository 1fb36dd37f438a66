"""Survey tasks: a questionnaire version x ward(s) x target count x window x
the survey takers assigned (staff ids; they sign in on the node's portal with
their staff number and PIN). Open tasks go down to the nodes of their zones in
each node's retained config (hub/ingest/downlink.py), with the questionnaire.

An ``alert`` (optional) opens a supervision ticket for the ward when a scale
question is answered at or below a score: ``{"question": "overall",
"at_most": 2, "category": "service"}`` (hub/surveys/alerts.py).
"""

import json
import re
from datetime import datetime, timedelta, timezone

from protocol.clock import iso, parse_iso
from protocol.surveys import SCALE, check_answers

from hub.surveys import questionnaires
from hub.surveys.questionnaires import QuestionnaireError

N_ = str  # marks a message for extraction; translated where it is shown

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
MAX_TARGET = 100_000
_DAY = timedelta(days=1)
_COLUMNS = ("id", "title", "questionnaire", "version", "zones", "target", "opens_at",
            "closes_at", "surveyors", "alert", "created_at", "created_by")


def _row(row) -> dict:
    task = dict(zip(_COLUMNS, row))
    for key in ("zones", "surveyors"):
        task[key] = json.loads(task[key])
    task["alert"] = json.loads(task["alert"]) if task["alert"] else None
    return task


def _check(db, draft: dict) -> dict:
    """The task in its stored form, or QuestionnaireError saying what is wrong."""
    tid = draft.get("id")
    if not isinstance(tid, str) or not _SLUG.match(tid):
        raise QuestionnaireError(N_("The task needs an id of lower-case letters, digits, - or "
                                    "_ (at most 64)."))
    title = draft.get("title")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        raise QuestionnaireError(N_("The task needs a title of 1 to 200 characters."))
    form = questionnaires.get(db, draft.get("questionnaire") or "", draft.get("version"))
    if form is None:
        raise QuestionnaireError(N_("Unknown questionnaire: %(id)s."),
                                 id=str(draft.get("questionnaire")))
    zones = draft.get("zones")
    known = {z for (z,) in db.conn.execute("SELECT zone FROM zones")}
    if not isinstance(zones, list) or not zones or not set(zones) <= known:
        raise QuestionnaireError(N_("Choose at least one known ward."))
    target = draft.get("target")
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= MAX_TARGET:
        raise QuestionnaireError(N_("The target is a number of responses from 1 to %(max)d."),
                                 max=MAX_TARGET)
    try:
        opens, closes = parse_iso(draft["opens_at"]), parse_iso(draft["closes_at"])
    except (KeyError, TypeError, ValueError):
        raise QuestionnaireError(N_("The task needs a start and an end time.")) from None
    if closes <= opens:
        raise QuestionnaireError(N_("The end must be after the start."))
    surveyors = draft.get("surveyors")
    staff = {s for (s,) in db.conn.execute("SELECT staff_id FROM staff")}
    if not isinstance(surveyors, list) or not surveyors or not set(surveyors) <= staff:
        raise QuestionnaireError(N_("Assign at least one survey taker from the roster."))
    alert = draft.get("alert")
    if alert is not None:
        scales = {q["id"] for q in form["questions"] if q["kind"] == "scale"}
        at_most = alert.get("at_most") if isinstance(alert, dict) else None
        if (not isinstance(alert, dict) or alert.get("question") not in scales
                or isinstance(at_most, bool) or not isinstance(at_most, int)
                or not SCALE[0] <= at_most < SCALE[1]
                or not isinstance(alert.get("category"), str)):
            raise QuestionnaireError(N_("An alert names a 1-5 question, a score it fires at "
                                        "or below (1 to 4) and a ticket category."))
        alert = {k: alert[k] for k in ("question", "at_most", "category")}
    return {"id": tid, "title": title.strip(), "questionnaire": form["id"],
            "version": form["version"], "zones": sorted(set(zones)), "target": target,
            "opens_at": iso(opens), "closes_at": iso(closes),
            "surveyors": sorted(set(surveyors)), "alert": alert}


def save(db, draft: dict, who: str, now: datetime | None = None) -> dict:
    """Create or replace task ``draft["id"]`` (a version given as None takes the
    questionnaire's latest); returns it. QuestionnaireError when it is wrong."""
    task = _check(db, draft)
    db.conn.execute(
        f"INSERT INTO survey_tasks ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * 12)}) "
        "ON CONFLICT(id) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in _COLUMNS[1:10]),
        (task["id"], task["title"], task["questionnaire"], task["version"],
         json.dumps(task["zones"]), task["target"], task["opens_at"], task["closes_at"],
         json.dumps(task["surveyors"]), json.dumps(task["alert"]) if task["alert"] else None,
         iso(now or datetime.now(timezone.utc)), who))
    return get(db, task["id"])


def get(db, tid: str) -> dict | None:
    row = db.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM survey_tasks WHERE id = ?",
                          (tid,)).fetchone()
    return _row(row) if row else None


def all_tasks(db) -> list[dict]:
    """Every task, the newest window first."""
    return [_row(r) for r in db.conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM survey_tasks ORDER BY opens_at DESC, id")]


def open_in_zone(db, zone: str, now: datetime | None = None) -> list[dict]:
    """Tasks of ``zone`` whose window is on at ``now`` (or opens within a day:
    the node has them before the survey takers arrive), each with its
    questionnaire version as ``form``: what a node needs offline."""
    now = now or datetime.now(timezone.utc)
    found = []
    for row in db.conn.execute(
            f"SELECT {', '.join('t.' + c for c in _COLUMNS)} FROM survey_tasks t "
            "WHERE EXISTS (SELECT 1 FROM json_each(t.zones) WHERE value = ?) "
            "AND t.closes_at > ? AND t.opens_at <= ? ORDER BY t.opens_at, t.id",
            (zone, iso(now), iso(now.replace(microsecond=0) + _DAY))):
        task = _row(row)
        form = questionnaires.get(db, task["questionnaire"], task["version"])
        found.append({k: task[k] for k in ("id", "title", "opens_at", "closes_at", "target",
                                           "surveyors")} | {"form": form_for_node(form)})
    return found


def refusal(db, record: dict) -> str | None:
    """Why the hub cannot take a ``survey_response`` record (it is then
    quarantined), or None: an unknown task, another questionnaire or version
    than the task's, or answers that do not fit that version."""
    task = get(db, record["task_id"])
    if task is None:
        return f"survey_response: unknown task {record['task_id']!r}"
    if (record["questionnaire"], record["version"]) != (task["questionnaire"], task["version"]):
        return (f"survey_response: task {task['id']!r} asks {task['questionnaire']!r} version "
                f"{task['version']}, not {record['questionnaire']!r} version {record['version']}")
    form = questionnaires.get(db, task["questionnaire"], task["version"])
    checked = check_answers(form, record["answers"])
    extra = sorted(set(record["answers"]) - {q["id"] for q in form["questions"]})
    if checked.problems or extra:
        return ("survey_response: answers that do not fit the questionnaire: "
                + ", ".join(checked.problems + [f"{q} (unknown)" for q in extra]))
    return None


def form_for_node(form: dict) -> dict:
    """What the node shows: the questions and titles, no audit fields."""
    return {k: form[k] for k in ("id", "version", "title", "title_en", "questions")}



