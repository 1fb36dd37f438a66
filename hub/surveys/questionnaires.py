"""Questionnaires: the questions a survey asks, versioned.

A questionnaire is saved as a new version every time it changes; a version is
never edited, so a response (which names the version it answered) is always
read against the questions it was asked. A question is::

    {"id": "overall", "kind": "scale", "label": "总体满意度",
     "label_en": "Overall satisfaction", "required": true}

``kind`` is ``scale`` (1-5, 5 best; counts towards the satisfaction index),
``single`` or ``multi`` (``options``: ``[{"id", "label", "label_en"}]``) or
``text`` (free text, at most ``protocol.records.MAX_ANSWER_TEXT`` characters).
Ids are short slugs; labels are zh-CN with an optional English translation.
"""

import json
import re
from datetime import datetime, timezone

from protocol.clock import iso
from protocol.records import MAX_ANSWERS, MAX_CHOICES
from protocol.surveys import KINDS

N_ = str  # marks a message for extraction; translated where it is shown

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
MAX_LABEL = 200


class QuestionnaireError(ValueError):
    """A questionnaire that cannot be saved; ``message`` (N_) and ``params`` say why."""

    def __init__(self, message: str, **params):
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


def _label(value, where: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL:
        raise QuestionnaireError(N_("%(where)s needs a label of 1 to %(max)d characters."),
                                 where=where, max=MAX_LABEL)
    return value.strip()


def _slug(value, where: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise QuestionnaireError(N_("%(where)s needs an id of lower-case letters, digits, - "
                                    "or _ (at most 64)."), where=where)
    return value


def check_questions(questions) -> list[dict]:
    """The questions in their stored form, or QuestionnaireError saying what is wrong."""
    if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_ANSWERS:
        raise QuestionnaireError(N_("A questionnaire has 1 to %(max)d questions."),
                                 max=MAX_ANSWERS)
    seen, clean = set(), []
    for n, q in enumerate(questions, 1):
        where = f"#{n}"
        if not isinstance(q, dict):
            raise QuestionnaireError(N_("Question %(where)s is not an object."), where=where)
        qid = _slug(q.get("id"), f"Question {where}")
        if qid in seen:
            raise QuestionnaireError(N_("Two questions have the id %(id)s."), id=qid)
        seen.add(qid)
        kind = q.get("kind")
        if kind not in KINDS:
            raise QuestionnaireError(N_("Question %(id)s: the kind must be one of %(kinds)s."),
                                     id=qid, kinds=", ".join(KINDS))
        item = {"id": qid, "kind": kind, "label": _label(q.get("label"), qid),
                "label_en": _label(q.get("label_en"), qid, required=False),
                "required": bool(q.get("required", kind != "text"))}
        if kind in ("single", "multi"):
            options = q.get("options")
            if not isinstance(options, list) or not 2 <= len(options) <= MAX_CHOICES:
                raise QuestionnaireError(N_("Question %(id)s needs 2 to %(max)d options."),
                                         id=qid, max=MAX_CHOICES)
            ids = [_slug(o.get("id") if isinstance(o, dict) else None, f"{qid} option")
                   for o in options]
            if len(set(ids)) != len(ids):
                raise QuestionnaireError(N_("Question %(id)s has two options with one id."),
                                         id=qid)
            item["options"] = [{"id": oid, "label": _label(o.get("label"), f"{qid}/{oid}"),
                                "label_en": _label(o.get("label_en"), f"{qid}/{oid}", False)}
                               for oid, o in zip(ids, options)]
        clean.append(item)
    return clean


def save(db, qid: str, title: str, questions, who: str, title_en: str | None = None,
         now: datetime | None = None) -> int:
    """Store a new version of questionnaire ``qid`` (the first is 1); returns its
    number. An unchanged questionnaire keeps its latest version."""
    qid = _slug(qid, "The questionnaire")
    title, title_en = _label(title, qid), _label(title_en, qid, required=False)
    questions = check_questions(questions)
    latest = get(db, qid)
    if latest and (latest["title"], latest["title_en"], latest["questions"]) == (
            title, title_en, questions):
        return latest["version"]
    version = (latest["version"] + 1) if latest else 1
    db.conn.execute(
        "INSERT INTO questionnaires (id, version, title, title_en, questions, created_at, "
        "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (qid, version, title, title_en, json.dumps(questions, ensure_ascii=False),
         iso(now or datetime.now(timezone.utc)), who))
    return version


_COLUMNS = ("id", "version", "title", "title_en", "questions", "created_at", "created_by")


def _row(row) -> dict:
    item = dict(zip(_COLUMNS, row))
    item["questions"] = json.loads(item["questions"])
    return item


def get(db, qid: str, version: int | None = None) -> dict | None:
    """A version of a questionnaire (the latest when ``version`` is None), or None."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM questionnaires WHERE id = ?"
    given = version is not None
    row = db.conn.execute(sql + (" AND version = ?" if given else
                                 " ORDER BY version DESC LIMIT 1"),
                          (qid, version) if given else (qid,)).fetchone()
    return _row(row) if row else None


def latest_all(db) -> list[dict]:
    """The latest version of every questionnaire, by title."""
    rows = db.conn.execute(
        f"SELECT {', '.join('q.' + c for c in _COLUMNS)} FROM questionnaires q "
        "WHERE q.version = (SELECT max(version) FROM questionnaires WHERE id = q.id) "
        "ORDER BY q.title")
    return [_row(r) for r in rows]
