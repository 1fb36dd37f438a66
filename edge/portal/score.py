"""Live audience scoring (现场评分) on a hall node's portal: everyone checked in
to the contest on now, and its named judges, score the act whose scoring is
open, on a plain form (no JavaScript: the captive mini-browser has none).

The contest comes from the hub in the node's config (the event's
``contest``: scale, judges, each act's window). An act takes scores while
``opened_at <= now < closes_at`` (and before ``closed_at`` when the office
closed it early), on the node's clock. A score is a ``score`` record in the
outbox, so scoring goes on while the hub is unreachable; the hub counts each
person's latest score inside the window (hub/contests/scoring.py). The page
shows the score given (``local_scores``) and takes a new one until the act
closes.

Who: a bound phone is its owner; any other phone signs in with staff number
+ PIN for the length of a contest (``edge.portal.signin``).
"""

from datetime import datetime, timedelta

from flask import Blueprint, Flask, render_template, request, session
from flask_babel import gettext as _

from edge.checkins import checked_in
from protocol.clock import parse_iso

from .context import current_event, get_db, get_outbox, node_clock
from .device import phone
from .i18n import redirect_to
from .render import message_page
from . import signin
from .signin import forget, signed_in
from .writes import immediate

bp = Blueprint("score", __name__)
SIGNED_IN_FOR = timedelta(hours=4)
_SIGNED_IN = "scorer"
_SAVED = "score_saved"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["contest_on"] = lambda: _contest()[1] is not None


def _contest() -> tuple[dict | None, dict | None]:
    """(the event on now, its contest) or (event, None) / (None, None)."""
    event = current_event()
    contest = event.get("contest") if event and event.get("kind") == "contest" else None
    return event, contest if isinstance(contest, dict) else None


def open_act(contest: dict, now: datetime) -> dict | None:
    """The act taking scores at ``now``, or None."""
    for act in contest.get("acts") or []:
        try:
            opened, closes = parse_iso(act["opened_at"]), parse_iso(act["closes_at"])
            closed = parse_iso(act["closed_at"]) if act.get("closed_at") else None
        except (KeyError, TypeError, ValueError):
            continue
        if opened <= now < closes and (closed is None or now < closed):
            return act
    return None


def _no_contest():
    return message_page(404, _("No contest now"),
                        _("No contest is being scored in this hall now."))


def _scorer() -> str | None:
    current = phone()
    if current is not None and current.staff_id:
        return current.staff_id
    person = signed_in(_SIGNED_IN, SIGNED_IN_FOR)
    return person["staff_id"] if person else None


def _given(event_id: str, act: str, staff_id: str) -> int | None:
    row = get_db().conn.execute("SELECT value FROM local_scores WHERE event_id = ? AND act = ? "
                                "AND staff_id = ?", (event_id, act, staff_id)).fetchone()
    return row[0] if row else None


def _page(event, contest, staff_id, status=200, error=None):
    """The scoring page for ``staff_id``, or the page saying why they cannot score."""
    now = node_clock().now()
    if staff_id not in (contest.get("judges") or []) and not checked_in(
            get_db(), staff_id, event, node_clock().now_iso()):
        return message_page(403, _("Check in first"),
                            _("Only people checked in to %(title)s, and its judges, can "
                              "score.", title=event.get("title", "")))
    act = open_act(contest, now)
    low, high = contest.get("scale") or (1, 10)
    page = render_template(
        "score.html", event=event, act=act, values=range(int(low), int(high) + 1),
        given=_given(event["id"], act["act"], staff_id) if act else None,
        judge=staff_id in (contest.get("judges") or []), error=error,
        saved=session.pop(_SAVED, None))
    return page, status


@bp.get("/score")
def score_page():
    event, contest = _contest()
    if contest is None:
        return _no_contest()
    staff_id = _scorer()
    if staff_id is None:
        return render_template("score_signin.html", event=event, error=None, staff_id="")
    return _page(event, contest, staff_id)


@bp.post("/score/sign-in")
def sign_in():
    event, contest = _contest()
    if contest is None:
        return redirect_to("score.score_page")

    def form_page(status, error, staff_id, headers):
        page = render_template("score_signin.html", event=event, error=error,
                               staff_id=staff_id)
        return page, status, headers or {}
    return signin.sign_in(_SIGNED_IN, SIGNED_IN_FOR, form_page, "score.score_page")


@bp.post("/score/sign-out")
def sign_out():
    forget(_SIGNED_IN)
    return redirect_to("score.score_page")


@bp.post("/score")
def give():
    event, contest = _contest()
    if contest is None:
        return _no_contest()
    staff_id = _scorer()
    if staff_id is None:
        return redirect_to("score.score_page")
    act = open_act(contest, node_clock().now())
    if act is None or request.form.get("act") != act["act"]:
        return _page(event, contest, staff_id, 409,
                     _("Scoring for that act has closed; your score was not taken."))
    low, high = contest.get("scale") or (1, 10)
    try:
        value = int(request.form.get("value", ""))
    except ValueError:
        value = None
    if value is None or not int(low) <= value <= int(high):
        return _page(event, contest, staff_id, 400,
                     _("Choose a score from %(low)d to %(high)d.", low=int(low), high=int(high)))
    page = _page(event, contest, staff_id)  # refuses those not checked in
    if not isinstance(page, tuple) or page[1] != 200:
        return page
    now = node_clock().now_iso()
    outbox = get_outbox()
    with immediate(outbox.db):
        outbox.append({"type": "score", "ts": now, "event_id": event["id"], "act": act["act"],
                       "staff_id": staff_id, "value": value, "taken_at": now})
        outbox.db.conn.execute(
            "INSERT INTO local_scores (event_id, act, staff_id, value, ts) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id, act, staff_id) DO UPDATE SET value = excluded.value, "
            "ts = excluded.ts", (event["id"], act["act"], staff_id, value, now))
    session[_SAVED] = {"act": act.get("title", act["act"]), "value": value}
    return redirect_to("score.score_page")

