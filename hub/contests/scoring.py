"""The running ranking of a contest, computed from the ``score`` records on
every look, and frozen once the last act has closed.

Which scores count, for an act: those taken while it was open (``opened_at``
<= taken_at <= when it closed), by a named judge or by someone checked in to
the event, within the rule's scale; one per person, their latest (a phone may
change its score until the act closes). Each score record is stored once by
its id (hub/ingest/store.py), so a score sent twice is counted once.

An act's result: the judges' mean (dropping one highest and one lowest score
when the rule says so and at least three judges scored), the audience's mean,
and the total = judges' weight x judges' mean + (1 - weight) x audience's
mean; with only one side scored, that side alone. Ranks: by total, ties
sharing a rank. When every act has closed, ``FREEZE_AFTER`` later (scores
still on their way from a node), the ranking is stored with its time and
never recomputed.
"""

import json
from datetime import datetime, timedelta, timezone

from protocol.clock import iso, parse_iso

from hub.contests.acts import contest

FREEZE_AFTER = timedelta(seconds=15)


def _eligible(db, event_id: str, judges: set[str]) -> set[str]:
    checked_in = {s for (s,) in db.conn.execute(
        "SELECT DISTINCT staff_id FROM checkins WHERE event_id = ?", (event_id,))}
    return checked_in | judges


def act_scores(db, event_id: str, act: dict, rule, eligible: set[str],
               now: datetime) -> dict[str, float]:
    """staff id -> the score that counts, for one act (empty before it opens)."""
    if act["opened_at"] is None:
        return {}
    until = act["closed_at"] or iso(now)
    latest: dict[str, float] = {}
    for staff_id, value in db.conn.execute(
            "SELECT staff_id, value FROM scores WHERE event_id = ? AND act = ? "
            "AND taken_at >= ? AND taken_at <= ? ORDER BY taken_at, received_at, id",
            (event_id, act["act"], act["opened_at"], until)):
        if staff_id in eligible and rule.scale_min <= value <= rule.scale_max:
            latest[staff_id] = value
    return latest


def _mean(values) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 2) if values else None


def act_result(scores: dict[str, float], judges: set[str], rule) -> dict:
    """The judges' and the audience's means and the total for one act."""
    judged = sorted(v for s, v in scores.items() if s in judges)
    audience = [v for s, v in scores.items() if s not in judges]
    kept = judged[1:-1] if rule.drop_extremes and len(judged) >= 3 else judged
    judge_mean, audience_mean = _mean(kept), _mean(audience)
    if judge_mean is not None and audience_mean is not None:
        total = rule.judge_weight * judge_mean + (1 - rule.judge_weight) * audience_mean
    else:
        total = judge_mean if judge_mean is not None else audience_mean
    return {"scores_in": len(scores), "judge_count": len(judged), "judge_mean": judge_mean,
            "audience_count": len(audience), "audience_mean": audience_mean,
            "total": None if total is None else round(total, 2)}


def ranking(db, event_id: str, now: datetime | None = None) -> dict | None:
    """The contest (``hub.contests.acts.contest``) with ``rows``: every act with
    its result and ``rank`` (None until scored), best first, then in order;
    ``final`` is true once frozen (the rows are then the frozen ones);
    ``freeze_due`` says ``freeze`` should store them now. Only reads."""
    now = now or datetime.now(timezone.utc)
    found = contest(db, event_id, now)
    if found is None:
        return None
    if found["final"] is not None:
        return {**found, "rows": found["final"], "final": True, "freeze_due": False}
    judges = set(found["judges"])
    eligible = _eligible(db, event_id, judges)
    rows = [{**{k: a[k] for k in ("act", "position", "title", "performers", "state")},
             **act_result(act_scores(db, event_id, a, found["rule"], eligible, now), judges,
                          found["rule"])} for a in found["acts"]]
    rows.sort(key=lambda r: (r["total"] is None, -(r["total"] or 0), r["position"]))
    rank, previous = 0, object()
    for n, row in enumerate(rows, 1):
        if row["total"] is None:
            row["rank"] = None
            continue
        if row["total"] != previous:
            rank, previous = n, row["total"]
        row["rank"] = rank
    ended = [parse_iso(a["closed_at"]) for a in found["acts"] if a["state"] == "closed"]
    due = len(ended) == len(found["acts"]) and now >= max(ended) + FREEZE_AFTER
    return {**found, "rows": rows, "final": False, "freeze_due": due}


def freeze(db, event_id: str, now: datetime | None = None) -> bool:
    """Store the final ranking when it is due (``ranking``'s ``freeze_due``), in
    the caller's write transaction; True when it was frozen now."""
    now = now or datetime.now(timezone.utc)
    result = ranking(db, event_id, now)
    if result is None or not result.get("freeze_due"):
        return False
    ended = max(a["closed_at"] for a in result["acts"])
    db.conn.execute("UPDATE contests SET frozen_at = ?, final = ? WHERE event_id = ? "
                    "AND frozen_at IS NULL",
                    (ended, json.dumps(result["rows"], ensure_ascii=False), event_id))
    return True


def judge_sheet(db, event_id: str, now: datetime | None = None) -> list[dict]:
    """Every counted judge's score per act (for the results export), with
    ``dropped`` when the rule left it out."""
    now = now or datetime.now(timezone.utc)
    found = contest(db, event_id, now)
    if found is None:
        return []
    judges = set(found["judges"])
    rows = []
    for a in found["acts"]:
        scores = act_scores(db, event_id, a, found["rule"], judges, now)
        ordered = sorted(scores.items(), key=lambda item: (item[1], item[0]))
        dropped = ({ordered[0][0], ordered[-1][0]}
                   if found["rule"].drop_extremes and len(ordered) >= 3 else set())
        rows += [{"act": a["act"], "title": a["title"], "judge": s, "score": v,
                  "dropped": s in dropped} for s, v in sorted(scores.items())]
    return rows
