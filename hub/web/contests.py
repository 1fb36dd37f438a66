"""Dashboard area "contests": live audience scoring at an event of kind
``contest`` (hub/contests).

- ``/events/<id>/contest``: the presenter's page (office): set up the rule,
  the acts and the judges; open each act's scoring with a countdown, close it
  early; the running ranking; exports.
- ``/events/<id>/screen``: the big screen in the hall (any signed-in account,
  so the hall's PC needs no office rights): the current act, its countdown,
  the number of scores in and the ranking, in large type, zh-CN by default. It
  polls ``/api/v1/events/<id>/contest`` every 2 seconds (a few lines of plain
  JavaScript; without it the page reloads itself every 5 seconds) and shows
  the final ranking with its time once frozen.
- ``/events/<id>/contest/export.<csv|xlsx>``: per act (judges' and audience's
  means, total, rank) and per judge.
"""

from flask import (Blueprint, Flask, Response, abort, flash, jsonify, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _

from hub.attendance import exports
from hub.attendance.attendance import get_event
from hub.contests import acts, scoring
from hub.contests.acts import ContestError, Rule
from hub.db import write_transaction
from hub.web import openapi
from hub.web.auth import audited, requires
from hub.web.context import get_db

bp = Blueprint("contests", __name__)
api = Blueprint("contests_api", __name__, url_prefix="/api/v1")
POLL_MS = 2000
N_ = str  # marks a message for extraction; translated where it is shown


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)


def _contest_event(event_id: str) -> dict:
    event = get_event(get_db(), event_id)
    if event is None or event["kind"] != "contest":
        abort(404, description=f"no contest event {event_id}")
    return event


def _ranking(event_id: str) -> dict | None:
    """The running ranking; frozen first when it is due (a write of its own)."""
    db = get_db()
    result = scoring.ranking(db, event_id)
    if result is not None and result["freeze_due"]:
        with write_transaction(db):
            scoring.freeze(db, event_id)
        result = scoring.ranking(db, event_id)
    return result


def _parse_acts(text: str) -> list[dict]:
    """One act a line: ``id | title | performers`` (performers optional)."""
    found = []
    for line in text.splitlines():
        if line.strip():
            parts = [p.strip() for p in line.split("|")]
            found.append({"act": parts[0], "title": parts[1] if len(parts) > 1 else "",
                          "performers": parts[2] if len(parts) > 2 else ""})
    return found


def _number(name: str, default, kind=int):
    try:
        return kind(request.form.get(name, default))
    except (TypeError, ValueError):
        raise ContestError(N_("%(field)s must be a number."), field=name) from None


# -- the presenter's page -------------------------------------------------------------

@bp.get("/events/<contest_id>/contest", endpoint="presenter")
@requires("office")
def presenter(contest_id):
    event = _contest_event(contest_id)
    return render_template("contests_presenter.html", event=event,
                           result=_ranking(contest_id), poll_ms=POLL_MS)


@bp.post("/events/<contest_id>/contest", endpoint="set_up")
@requires("office")
def set_up(contest_id):
    _contest_event(contest_id)
    db = get_db()
    try:
        rule = Rule(_number("scale_min", 1), _number("scale_max", 10),
                    request.form.get("drop_extremes") == "on",
                    _number("judge_weight", 0.7, float))
        chosen = _parse_acts(request.form.get("acts", ""))
        judges = sorted(set(request.form.get("judges", "").replace(",", " ").split()))
        with write_transaction(db):
            acts.set_up(db, contest_id, rule, chosen, judges)
            audited("contest.setup", f"event:{contest_id}", acts=len(chosen), judges=judges)
    except ContestError as exc:
        flash(_(exc.message, **exc.params), "error")
        return redirect(url_for("contests.presenter", contest_id=contest_id), code=303)
    flash(_("The contest is set up."), "info")
    return redirect(url_for("contests.presenter", contest_id=contest_id), code=303)


@bp.post("/events/<contest_id>/contest/<act>/<step>", endpoint="step")
@requires("office")
def step(contest_id, act, step):
    _contest_event(contest_id)
    if step not in ("open", "close"):
        abort(404)
    db = get_db()
    try:
        with write_transaction(db):
            if step == "open":
                acts.open_act(db, contest_id, act, _number("seconds", 30))
            else:
                acts.close_act(db, contest_id, act)
            audited(f"contest.{step}", f"event:{contest_id}", act=act)
    except ContestError as exc:
        flash(_(exc.message, **exc.params), "error")
    return redirect(url_for("contests.presenter", contest_id=contest_id), code=303)


# -- the big screen -------------------------------------------------------------------

@bp.get("/events/<contest_id>/screen", endpoint="screen")
@requires("staff", "office", "dept_reviewer")
def screen(contest_id):
    event = _contest_event(contest_id)
    result = _ranking(contest_id)
    if result is None:
        abort(404, description="this contest is not set up yet")
    return render_template("contests_screen.html", event=event, result=result,
                           poll_ms=POLL_MS)


def _json(result: dict) -> dict:
    current = result["current"]
    rule = result["rule"]
    return {"event_id": result["event_id"], "final": result["final"],
            "frozen_at": result["frozen_at"],
            "rule": {"scale_min": rule.scale_min, "scale_max": rule.scale_max,
                     "drop_extremes": rule.drop_extremes, "judge_weight": rule.judge_weight},
            "current": None if current is None else {
                k: current[k] for k in ("act", "title", "performers", "seconds_left",
                                        "closes_at")},
            "rows": result["rows"]}


@api.get("/events/<contest_id>/contest")
@requires("staff", "office", "dept_reviewer")
def contest_json(contest_id):
    """The running (or final) ranking: what the big screen polls."""
    _contest_event(contest_id)
    result = _ranking(contest_id)
    if result is None:
        abort(404, description="this contest is not set up yet")
    return jsonify(_json(result))


# -- exports ----------------------------------------------------------------------------

@bp.get("/events/<contest_id>/contest/export.<any(csv, xlsx):fmt>", endpoint="export")
@requires("office")
def export(contest_id, fmt):
    _contest_event(contest_id)
    result = _ranking(contest_id)
    if result is None:
        abort(404, description="this contest is not set up yet")
    ranking = exports.Sheet("Ranking", ["rank", "act", "title", "performers", "judges_mean",
                                        "judges", "audience_mean", "audience", "total"],
                            [[r["rank"], r["act"], r["title"], r["performers"], r["judge_mean"],
                              r["judge_count"], r["audience_mean"], r["audience_count"],
                              r["total"]] for r in result["rows"]])
    judges = exports.Sheet("Judges", ["act", "title", "judge", "score", "dropped"],
                           [[j["act"], j["title"], j["judge"], j["score"], j["dropped"]]
                            for j in scoring.judge_sheet(get_db(), contest_id)])
    data = exports.write([ranking] if fmt == "csv" else [ranking, judges], fmt)
    with write_transaction(get_db()):
        audited("export.contest", f"event:{contest_id}", format=fmt)
    response = Response(data, content_type=exports.MIME[fmt])
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{exports.filename("contest", contest_id, fmt)}"')
    response.headers["Cache-Control"] = "no-store"
    return response


OPENAPI = {
    "paths": {"/api/v1/events/{contest_id}/contest": {"get": {
        "summary": "A contest's running or final ranking (what the big screen shows)",
        "parameters": [openapi.path_param("contest_id")],
        "responses": {"200": openapi.json_response("The ranking", openapi.ref("Contest")),
                      **openapi.errors(404), **openapi.SIGNED_IN}}}},
    "schemas": {"Contest": {
        "type": "object", "required": ["event_id", "final", "frozen_at", "rule", "current",
                                       "rows"],
        "properties": {
            "event_id": {"type": "string"}, "final": {"type": "boolean"},
            "frozen_at": {"type": ["string", "null"]},
            "rule": {"type": "object"},
            "current": {"type": ["object", "null"]},
            "rows": {"type": "array", "items": {
                "type": "object",
                "required": ["act", "title", "rank", "total", "scores_in"],
                "properties": {"act": {"type": "string"}, "title": {"type": "string"},
                               "performers": {"type": "string"},
                               "rank": {"type": ["integer", "null"]},
                               "total": {"type": ["number", "null"]},
                               "scores_in": {"type": "integer"},
                               "judge_mean": {"type": ["number", "null"]},
                               "audience_mean": {"type": ["number", "null"]}}}}}}},
}
