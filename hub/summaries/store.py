"""Drafts as edited on the hub (``drafts``: one per kind, subject and
language), with the facts they were drafted from, who saved them and when.
Without a saved draft the current one is written afresh from the data;
``reset`` ("redraft from the data") drops the saved one.

Subjects: an event's id; ``<staff id>:<year>`` for a person's year.
Functions never commit: the caller wraps a change and its audit row in one
``hub.db.write_transaction``.
"""

import json
import re
from datetime import datetime, timezone

from protocol.clock import iso

from hub.summaries import draft

N_ = str  # marks a message for extraction; translated where it is shown

KINDS = ("event", "person_year")
TEXT_MAX = 20_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tabs and newlines are text
_COLUMNS = ("kind", "subject", "lang", "text", "facts", "edited_by", "updated_at")


class DraftError(ValueError):
    """A text that cannot be saved; ``message`` (N_) and ``params`` say why."""

    def __init__(self, message: str, **params):
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


def year_subject(staff_id: str, year: int) -> str:
    return f"{staff_id}:{year}"


def get(db, kind: str, subject: str, lang: str) -> dict | None:
    """The saved draft (``facts`` decoded), or None."""
    row = db.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM drafts WHERE kind = ? AND "
                          "subject = ? AND lang = ?", (kind, subject, lang)).fetchone()
    if row is None:
        return None
    saved = dict(zip(_COLUMNS, row))
    saved["facts"] = json.loads(saved["facts"])
    return saved


def current(db, kind: str, subject: str, lang: str, facts: dict) -> dict:
    """The saved draft, else a fresh one from ``facts`` (``edited_by`` and
    ``updated_at`` None); each with ``stray``: its numbers that are not the
    current facts' (``draft.check``)."""
    saved = get(db, kind, subject, lang)
    if saved is None:
        saved = {"kind": kind, "subject": subject, "lang": lang,
                 "text": draft.write(kind, facts, lang), "facts": facts,
                 "edited_by": None, "updated_at": None}
    return {**saved, "stray": draft.check(saved["text"], facts)}


def clean(text) -> str:
    """The text as it is kept: line ends made ``\\n``, control characters
    dropped; DraftError when it is empty or too long."""
    text = _CONTROL.sub("", str(text or "").replace("\r\n", "\n").replace("\r", "\n"))
    if not text.strip():
        raise DraftError(N_("The draft is empty: write something, or redraft it from the data."))
    if len(text) > TEXT_MAX:
        raise DraftError(N_("The draft is longer than %(max)d characters."), max=TEXT_MAX)
    return text


def save(db, kind: str, subject: str, lang: str, text, facts: dict, who: str,
         now: datetime | None = None) -> dict:
    """Keep ``text`` (checked by ``clean``) as the draft, with the facts it
    goes with."""
    if kind not in KINDS or lang not in draft.LANGS:
        raise ValueError(f"no drafts of {kind!r} in {lang!r}")
    text = clean(text)
    db.conn.execute(
        f"INSERT INTO drafts ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, subject, lang) DO UPDATE SET text = excluded.text, "
        "facts = excluded.facts, edited_by = excluded.edited_by, "
        "updated_at = excluded.updated_at",
        (kind, subject, lang, text, json.dumps(facts, ensure_ascii=False, sort_keys=True), who,
         iso(now or datetime.now(timezone.utc))))
    return get(db, kind, subject, lang)


def reset(db, kind: str, subject: str, lang: str) -> bool:
    """Drop the saved draft; True when there was one."""
    return db.conn.execute("DELETE FROM drafts WHERE kind = ? AND subject = ? AND lang = ?",
                           (kind, subject, lang)).rowcount > 0
