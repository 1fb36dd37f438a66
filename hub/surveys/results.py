"""What the survey responses say, computed on every look (they are few: a
task is hundreds of responses): totals against the target, each question's
distribution, the satisfaction index per ward and per department by week, and
the rows of an export.

**Satisfaction index** (0-100): a response's score is the mean of its 1-5
answers mapped to 0-100 (1 -> 0, 3 -> 50, 5 -> 100); the index of a group
is the mean of its responses' scores. Responses without any 1-5 answer do not
count towards it. Answers are read against the questionnaire version each
response names (``protocol.surveys.check_answers``); anything that does not fit
it is left out, never guessed.
"""

import json
from datetime import date, datetime, timedelta, tzinfo

from protocol.clock import parse_iso
from protocol.surveys import SCALE, check_answers

from hub.surveys import questionnaires


def score(form: dict, answers: dict) -> float | None:
    """A response's satisfaction score 0-100, or None without any 1-5 answer."""
    values = [answers[q["id"]] for q in form["questions"]
              if q["kind"] == "scale" and q["id"] in answers]
    if not values:
        return None
    low, high = SCALE
    return sum((v - low) / (high - low) * 100 for v in values) / len(values)


def responses(db, task_id: str) -> list[dict]:
    """The task's responses, oldest first: ``zone``, ``staff_id``, ``taken_at``,
    ``form`` (its questionnaire version) and ``answers`` (those that fit it)."""
    forms: dict[tuple, dict | None] = {}
    found = []
    for zone, staff_id, taken_at, qid, version, answers in db.conn.execute(
            "SELECT zone, staff_id, taken_at, questionnaire, version, answers "
            "FROM survey_responses WHERE task_id = ? ORDER BY taken_at, id", (task_id,)):
        key = (qid, version)
        if key not in forms:
            forms[key] = questionnaires.get(db, qid, version)
        form = forms[key]
        if form is None:
            continue  # a version this hub never had: nothing to read it against
        found.append({"zone": zone, "staff_id": staff_id, "taken_at": taken_at, "form": form,
                      "answers": check_answers(form, json.loads(answers)).values})
    return found


def week_of(taken_at: str, tz: tzinfo) -> date:
    """The Monday of the hospital-time week ``taken_at`` falls in."""
    day = parse_iso(taken_at).astimezone(tz).date()
    return day - timedelta(days=day.weekday())


def _index(scores: list[float]) -> float | None:
    return round(sum(scores) / len(scores), 1) if scores else None


def summary(db, task: dict, tz: tzinfo, now: datetime) -> dict:
    """Everything the task page, the board and the API show:

    ``count``, ``target``, ``progress`` (0-1), ``by_zone`` ({zone: count}),
    ``by_surveyor``, ``index`` (all responses), ``questions`` (each question of
    the task's version with its distribution: ``counts`` per value or option,
    ``mean`` for 1-5, ``texts`` for free text, newest first, at most 50),
    ``weekly`` ([{week, zone, department, count, index}]), ``open`` (the window
    is on at ``now``)."""
    rows = responses(db, task["id"])
    form = questionnaires.get(db, task["questionnaire"], task["version"])
    departments = dict(db.conn.execute("SELECT zone, department FROM zones"))
    by_zone: dict[str, int] = {}
    by_surveyor: dict[str, int] = {}
    weekly: dict[tuple, list] = {}
    scores = []
    for r in rows:
        by_zone[r["zone"]] = by_zone.get(r["zone"], 0) + 1
        by_surveyor[r["staff_id"]] = by_surveyor.get(r["staff_id"], 0) + 1
        s = score(r["form"], r["answers"])
        key = (week_of(r["taken_at"], tz), r["zone"])
        weekly.setdefault(key, [0, []])
        weekly[key][0] += 1
        if s is not None:
            scores.append(s)
            weekly[key][1].append(s)
    questions = []
    for q in form["questions"]:
        answered = [r["answers"][q["id"]] for r in rows
                    if r["form"]["version"] == form["version"] and q["id"] in r["answers"]]
        item = {**q, "answered": len(answered)}
        if q["kind"] == "scale":
            item["counts"] = {v: answered.count(v) for v in range(SCALE[0], SCALE[1] + 1)}
            item["mean"] = round(sum(answered) / len(answered), 2) if answered else None
        elif q["kind"] == "text":
            item["texts"] = list(reversed(answered))[:50]
        else:
            item["counts"] = {o["id"]: sum(1 for a in answered if o["id"] in a)
                              for o in q["options"]}
        questions.append(item)
    on = parse_iso(task["opens_at"]) <= now < parse_iso(task["closes_at"])
    return {"count": len(rows), "target": task["target"],
            "progress": min(1.0, len(rows) / task["target"]),
            "by_zone": by_zone, "by_surveyor": by_surveyor, "index": _index(scores),
            "questions": questions, "open": on,
            "weekly": [{"week": week.isoformat(), "zone": zone,
                        "department": departments.get(zone), "count": count,
                        "scored": len(group), "index": _index(group)}
                       for (week, zone), (count, group) in sorted(weekly.items())]}


def index_by_department(weekly: list[dict]) -> list[dict]:
    """``summary``'s weekly rows folded by department: [{week, department,
    zones, count, index}], the index weighted by each ward's scored responses.
    A ward without a department is its own line (its ``department`` is the
    ward's id; ``zones`` lists the wards folded into each line)."""
    folded: dict[tuple, list] = {}
    for row in weekly:
        key = (row["week"], row["department"] or row["zone"])
        slot = folded.setdefault(key, [0, 0.0, 0, []])
        slot[0] += row["count"]
        slot[3].append(row["zone"])
        if row["index"] is not None:
            slot[1] += row["index"] * row["scored"]
            slot[2] += row["scored"]
    return [{"week": week, "department": dept, "zones": zones, "count": count,
             "index": round(total / scored, 1) if scored else None}
            for (week, dept), (count, total, scored, zones) in sorted(folded.items())]


def export_rows(db, task: dict, tz: tzinfo) -> tuple[list[str], list[list]]:
    """(header, rows) of every response: time (hospital), ward, survey taker,
    version, then each question of the task's version (options by id, joined
    with "; "); the respondent is never in it because it was never taken."""
    form = questionnaires.get(db, task["questionnaire"], task["version"])
    header = ["taken_at", "zone", "surveyor", "version"] + [q["id"] for q in form["questions"]]
    rows = []
    for r in responses(db, task["id"]):
        cells = [parse_iso(r["taken_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                 r["zone"], r["staff_id"], r["form"]["version"]]
        for q in form["questions"]:
            value = r["answers"].get(q["id"])
            cells.append("; ".join(value) if isinstance(value, list) else value)
        rows.append(cells)
    return header, rows
