"""The dashboard's navigation bar: each area's page, for the roles that may
open it. An entry whose endpoint is not registered is left out."""

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_login import current_user

# (endpoint, label, roles besides admin)
ITEMS = (
    ("pages.today", _l("Today"), ("office",)),
    ("events.index", _l("Events"), ("office",)),
    ("tickets.index", _l("Tickets"), ("office", "dept_reviewer")),
    ("hours.index", _l("Volunteer hours"), ("office", "dept_reviewer")),
    ("hotspots.page", _l("Hotspots"), ("office", "dept_reviewer")),
    ("surveys.board", _l("Surveys"), ("office", "dept_reviewer")),
    ("assessment.index", _l("Assessment"), ("office", "dept_reviewer")),
    ("people.index", _l("People"), ("office", "dept_reviewer")),
    ("records.inbox", _l("Record reviews"),
     ("office", "dept_reviewer", "branch_reviewer", "committee_reviewer")),
    ("roster.staff", _l("Roster"), ("office",)),
    ("zones.index", _l("Zones"), ("office",)),
    ("fleet.nodes", _l("Nodes"), ("office",)),
    ("accounts.index", _l("Accounts"), ()),
    ("audit_log.index", _l("Audit log"), ()),
    ("people.me", _l("My record"), ("staff",)),
    ("registration.mine", _l("My events"), ("staff",)),
    ("records.mine", _l("My record entries"), ("staff",)),
)


def nav_items() -> list[tuple[str, str]]:
    if not current_user.is_authenticated:
        return []
    return [(endpoint, label) for endpoint, label, roles in ITEMS
            if endpoint in current_app.view_functions and current_user.may(*roles)]
