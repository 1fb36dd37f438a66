"""A contest's set-up and the run of its acts.

An event of kind ``contest`` (a health-education competition, a speech
contest) gets a scoring **rule** (a scale such as 1-10, whether the highest
and the lowest judge's score are dropped, the judges' weight against the
audience's), its **acts** in order (title, performers) and its **judges**
(staff ids named in advance). The office opens an act's scoring with a
countdown (``open_act``); scoring closes when the countdown ends or when the
office closes it early (``close_act``). Times are wire timestamps.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from protocol.clock import iso, parse_iso

N_ = str  # marks a message for extraction; translated where it is shown

_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
MAX_ACTS = 100
MAX_SECONDS = 3600


class ContestError(ValueError):
    """A set-up or a step that cannot be done; ``message`` (N_) and ``params`` say why."""

    def __init__(self, message: str, **params):
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


@dataclass(frozen=True)
class Rule:
    scale_min: int = 1
    scale_max: int = 10
    drop_extremes: bool = True   # the judges' highest and lowest, with 3 judges or more
    judge_weight: float = 0.7    # the audience's is 1 - this

    def check(self) -> "Rule":
        if not (isinstance(self.scale_min, int) and isinstance(self.scale_max, int)
                and 0 <= self.scale_min < self.scale_max <= 100):
            raise ContestError(N_("The scale runs from a whole number to a larger one, "
                                  "within 0 to 100."))
        if not 0 <= self.judge_weight <= 1:
            raise ContestError(N_("The judges' weight is from 0 to 1."))
        return self


def set_up(db, event_id: str, rule: Rule, acts: list[dict], judges: list[str]) -> None:
    """Give contest ``event_id`` its rule, acts (``{"act", "title", "performers"}``
    in order) and judges; replaces a set-up whose scoring has not started."""
    kind = db.conn.execute("SELECT kind FROM events WHERE id = ?", (event_id,)).fetchone()
    if kind is None or kind[0] != "contest":
        raise ContestError(N_("%(event)s is not a contest event."), event=event_id)
    if db.conn.execute("SELECT 1 FROM contest_acts WHERE event_id = ? AND opened_at IS NOT "
                       "NULL", (event_id,)).fetchone():
        raise ContestError(N_("Scoring has started: the acts can no longer change."))
    rule.check()
    if not 1 <= len(acts) <= MAX_ACTS:
        raise ContestError(N_("A contest has 1 to %(max)d acts."), max=MAX_ACTS)
    ids = [a.get("act") for a in acts]
    if not all(isinstance(a, str) and _SLUG.match(a) for a in ids) or len(set(ids)) < len(ids):
        raise ContestError(N_("Each act needs its own id of lower-case letters, digits, - "
                              "or _."))
    if any(not isinstance(a.get("title"), str) or not a["title"].strip() for a in acts):
        raise ContestError(N_("Each act needs a title."))
    staff = {s for (s,) in db.conn.execute("SELECT staff_id FROM staff")}
    if not set(judges) <= staff:
        raise ContestError(N_("Unknown judge: %(ids)s."), ids=", ".join(sorted(set(judges) -
                                                                              staff)))
    db.conn.execute("INSERT INTO contests (event_id, scale_min, scale_max, drop_extremes, "
                    "judge_weight) VALUES (?, ?, ?, ?, ?) ON CONFLICT(event_id) DO UPDATE SET "
                    "scale_min = excluded.scale_min, scale_max = excluded.scale_max, "
                    "drop_extremes = excluded.drop_extremes, "
                    "judge_weight = excluded.judge_weight, frozen_at = NULL, final = NULL",
                    (event_id, rule.scale_min, rule.scale_max, int(rule.drop_extremes),
                     rule.judge_weight))
    db.conn.execute("DELETE FROM contest_acts WHERE event_id = ?", (event_id,))
    db.conn.executemany(
        "INSERT INTO contest_acts (event_id, act, position, title, performers) "
        "VALUES (?, ?, ?, ?, ?)",
        [(event_id, a["act"], n, a["title"].strip(), (a.get("performers") or "").strip())
         for n, a in enumerate(acts, 1)])
    db.conn.execute("DELETE FROM contest_judges WHERE event_id = ?", (event_id,))
    db.conn.executemany("INSERT INTO contest_judges (event_id, staff_id) VALUES (?, ?)",
                        [(event_id, j) for j in sorted(set(judges))])


def contest(db, event_id: str, now: datetime | None = None) -> dict | None:
    """The contest with its rule, judges and acts, each act with its ``state``
    at ``now``: ``waiting``, ``open`` (``seconds_left``) or ``closed``
    (``closed_at``: when the countdown ended or the office closed it)."""
    row = db.conn.execute("SELECT scale_min, scale_max, drop_extremes, judge_weight, "
                          "frozen_at, final FROM contests WHERE event_id = ?",
                          (event_id,)).fetchone()
    if row is None:
        return None
    now = now or datetime.now(timezone.utc)
    rule = Rule(row[0], row[1], bool(row[2]), row[3])
    acts = []
    for act, position, title, performers, opened, closes, closed in db.conn.execute(
            "SELECT act, position, title, performers, opened_at, closes_at, closed_at "
            "FROM contest_acts WHERE event_id = ? ORDER BY position", (event_id,)):
        end = min(closed, closes) if closed and closes else (closed or closes)
        if opened is None:
            state, left = "waiting", None
        elif end and parse_iso(end) <= now:
            state, left = "closed", 0
        else:
            state, left = "open", max(0, int((parse_iso(closes) - now).total_seconds()))
        acts.append({"act": act, "position": position, "title": title,
                     "performers": performers, "opened_at": opened, "closes_at": closes,
                     "closed_at": end if state == "closed" else None, "state": state,
                     "seconds_left": left})
    judges = [j for (j,) in db.conn.execute(
        "SELECT staff_id FROM contest_judges WHERE event_id = ? ORDER BY staff_id", (event_id,))]
    return {"event_id": event_id, "rule": rule, "acts": acts, "judges": judges,
            "frozen_at": row[4], "final": json.loads(row[5]) if row[5] else None,
            "current": next((a for a in acts if a["state"] == "open"), None)}


def open_act(db, event_id: str, act: str, seconds: int, now: datetime | None = None) -> None:
    """Open ``act`` for scoring for ``seconds``; another act still open closes now."""
    now = now or datetime.now(timezone.utc)
    found = contest(db, event_id, now)
    if found is None or act not in {a["act"] for a in found["acts"]}:
        raise ContestError(N_("Unknown act: %(act)s."), act=act)
    if found["frozen_at"]:
        raise ContestError(N_("The contest is over: its ranking is final."))
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 10 <= seconds <= \
            MAX_SECONDS:
        raise ContestError(N_("Scoring lasts 10 to %(max)d seconds."), max=MAX_SECONDS)
    if found["current"] and found["current"]["act"] != act:
        close_act(db, event_id, found["current"]["act"], now)
    db.conn.execute("UPDATE contest_acts SET opened_at = ?, closes_at = ?, closed_at = NULL "
                    "WHERE event_id = ? AND act = ?",
                    (iso(now), iso(now + timedelta(seconds=seconds)), event_id, act))


def close_act(db, event_id: str, act: str, now: datetime | None = None) -> None:
    """Close ``act``'s scoring now (before its countdown ends)."""
    now = now or datetime.now(timezone.utc)
    db.conn.execute("UPDATE contest_acts SET closed_at = ? WHERE event_id = ? AND act = ? "
                    "AND opened_at IS NOT NULL AND closed_at IS NULL", (iso(now), event_id, act))


def refusal(db, record: dict) -> str | None:
    """Why the hub cannot take a ``score`` record (it is then quarantined), or
    None: no such contest or act, or a value off its scale. (A score outside
    the act's window is kept: the ranking leaves it out.)"""
    row = db.conn.execute("SELECT c.scale_min, c.scale_max FROM contests c JOIN contest_acts a "
                          "ON a.event_id = c.event_id WHERE c.event_id = ? AND a.act = ?",
                          (record["event_id"], record["act"])).fetchone()
    if row is None:
        return f"score: no act {record['act']!r} in contest {record['event_id']!r}"
    if not row[0] <= record["value"] <= row[1]:
        return f"score: {record['value']} is off the scale {row[0]}..{row[1]}"
    return None
