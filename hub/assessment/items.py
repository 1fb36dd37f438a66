"""Assessment items per year (考核项目): what counts towards each and the
target per person.

An item's ``measure`` is one of
- ``credit_hours``: credit hours of events attended (present) of ``event_kinds``
  (empty: every kind);
- ``events``: the number of such events attended;
- ``volunteer_hours``: approved volunteer hours;
- ``entries``: approved record entries of ``entry_kinds`` (hub/records).

The target is ``target`` for everyone, unless ``targets`` names the person's
department (``"department:<code>"``, first) or role (``"role:<role>"``).
"""

import json
import re

N_ = str  # marks a message for extraction; translated where it is shown

MEASURES = ("credit_hours", "events", "volunteer_hours", "entries")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
_COLUMNS = ("year", "id", "title", "title_en", "measure", "event_kinds", "entry_kinds",
            "target", "targets")


class ItemError(ValueError):
    """An item that cannot be saved; ``message`` (N_) and ``params`` say why."""

    def __init__(self, message: str, **params):
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


def _row(row) -> dict:
    item = dict(zip(_COLUMNS, row))
    for key in ("event_kinds", "entry_kinds", "targets"):
        item[key] = json.loads(item[key])
    return item


def save(db, year: int, item_id: str, title: str, measure: str, target: float, *,
         title_en: str | None = None, event_kinds=(), entry_kinds=(),
         targets: dict | None = None) -> dict:
    """Create or replace item ``item_id`` of ``year``; ItemError when it is wrong."""
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise ItemError(N_("The year must be between 2000 and 2100."))
    if not isinstance(item_id, str) or not _SLUG.match(item_id):
        raise ItemError(N_("The item needs an id of lower-case letters, digits, - or _."))
    if not isinstance(title, str) or not title.strip():
        raise ItemError(N_("The item needs a title."))
    if measure not in MEASURES:
        raise ItemError(N_("The measure must be one of %(measures)s."),
                        measures=", ".join(MEASURES))
    targets = dict(targets or {})
    for key, value in [("target", target), *targets.items()]:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ItemError(N_("Targets are numbers of 0 or more (%(key)s)."), key=key)
        if key != "target" and not re.match(r"(department|role):\S+\Z", key):
            raise ItemError(N_("A target is for department:<code> or role:<role>, not "
                                "%(key)s."), key=key)
    db.conn.execute(
        f"INSERT INTO assessment_items ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (year, id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("year", "id")),
        (year, item_id, title.strip(), title_en, measure, json.dumps(sorted(event_kinds)),
         json.dumps(sorted(entry_kinds)), float(target), json.dumps(targets, sort_keys=True)))
    return get(db, year, item_id)


def get(db, year: int, item_id: str) -> dict | None:
    row = db.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM assessment_items "
                          "WHERE year = ? AND id = ?", (year, item_id)).fetchone()
    return _row(row) if row else None


def of_year(db, year: int) -> list[dict]:
    return [_row(r) for r in db.conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM assessment_items WHERE year = ? ORDER BY id",
        (year,))]


def target_for(item: dict, department: str | None, role: str | None) -> float:
    """The person's target: their department's, else their role's, else the item's."""
    for key in (f"department:{department}", f"role:{role}"):
        if key in item["targets"]:
            return float(item["targets"][key])
    return float(item["target"])
