"""Hotspots: where the same kind of problem keeps coming back.

What is counted is **tickets** (distinct problems: duplicates of one problem
count once), rejected tickets excluded, by the time the problem was reported
(``tickets.reported_at``).

* ``weekly_counts``: tickets by zone x category x ISO week (``2026-W48``,
  weeks in UTC) over the last ``weeks`` weeks.
* ``recurring``: a zone x category is flagged **recurring** when, at ``now``,

      recent = tickets in the last 7 days
      baseline = tickets in the 8 weeks (56 days) before those 7 days / 8
      recent >= 3  and  recent >= 2 * (baseline + 1)

  The "+ 1" keeps a zone with no history from being flagged for one or two
  reports, and asks a busy place for double its usual rate. A one-sided
  Poisson tail probability P(X >= recent | mean = baseline) is returned with
  each row for information (``p_value``), not used for the decision, because
  a baseline of 0 makes any count "significant".
"""

import math
from datetime import datetime, timedelta, timezone

from protocol.clock import iso

RECENT = timedelta(days=7)
BASELINE_WEEKS = 8
MIN_RECENT = 3
FACTOR = 2.0


def iso_week(ts: str) -> str:
    year, week, _ = datetime.fromisoformat(ts.replace("Z", "+00:00")).isocalendar()
    return f"{year}-W{week:02d}"


def weekly_counts(db, now: datetime | None = None, weeks: int = 12) -> list[dict]:
    """``[{"zone", "category", "week", "count"}]`` for the last ``weeks`` weeks."""
    now = now or datetime.now(timezone.utc)
    counts: dict[tuple, int] = {}
    for zone, category, reported_at in db.conn.execute(
            "SELECT zone, category, reported_at FROM tickets WHERE state != 'rejected' "
            "AND reported_at >= ? AND reported_at <= ?",
            (iso(now - timedelta(weeks=weeks)), iso(now))):
        key = (zone, category, iso_week(reported_at))
        counts[key] = counts.get(key, 0) + 1
    return [{"zone": z, "category": c, "week": w, "count": n}
            for (z, c, w), n in sorted(counts.items())]


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    below = sum(math.exp(-mean + i * math.log(mean) - math.lgamma(i + 1)) for i in range(k))
    return max(0.0, 1.0 - below)


def recurring(db, now: datetime | None = None, all_rows: bool = False) -> list[dict]:
    """Zone x category rows ``{"zone", "category", "recent", "baseline_weekly",
    "threshold", "p_value", "recurring"}``, most recent count first: only the
    flagged ones unless ``all_rows``."""
    now = now or datetime.now(timezone.utc)
    recent_from = now - RECENT
    baseline_from = recent_from - timedelta(weeks=BASELINE_WEEKS)
    rows = db.conn.execute(
        "SELECT zone, category, "
        "sum(reported_at >= ?), sum(reported_at < ?) FROM tickets "
        "WHERE state != 'rejected' AND reported_at >= ? AND reported_at <= ? "
        "GROUP BY zone, category",
        (iso(recent_from), iso(recent_from), iso(baseline_from), iso(now))).fetchall()
    out = []
    for zone, category, recent, before in rows:
        baseline = before / BASELINE_WEEKS
        threshold = max(MIN_RECENT, FACTOR * (baseline + 1))
        flagged = recent >= threshold
        if flagged or all_rows:
            out.append({"zone": zone, "category": category, "recent": recent,
                        "baseline_weekly": round(baseline, 3), "threshold": threshold,
                        "p_value": round(poisson_tail(recent, baseline), 6),
                        "recurring": flagged})
    out.sort(key=lambda r: (-r["recent"], r["zone"], r["category"]))
    return out


def hotspots(db, now: datetime | None = None, weeks: int = 12) -> dict:
    """What the dashboard reads: ``{"now", "rule", "weekly": [...],
    "recurring": [...]}``."""
    now = now or datetime.now(timezone.utc)
    return {"now": iso(now),
            "rule": f"last 7 days >= {MIN_RECENT} and >= {FACTOR:g} x (mean weekly count of "
                    f"the previous {BASELINE_WEEKS} weeks + 1)",
            "weekly": weekly_counts(db, now, weeks), "recurring": recurring(db, now)}
