"""Roles: every role (and nobody signed in) tries every page and API route of
the hub; only what the policy below allows succeeds.

POLICY is the specification, written out by hand (docs/roles.md says the same
in prose): a route missing from it fails the test, so a new route cannot ship
without a decision on who may use it."""

import pytest

from hub.people import accounts

from .hubweb import PASSWORD, csrf_token, sign_in, signed_in
from .hubworld import BRANCH as WORLD_BRANCH
from .hubworld import world

STAFF, REVIEWER, OFFICE, ADMIN = "staff", "dept_reviewer", "office", "admin"
BRANCH, COMMITTEE = "branch_reviewer", "committee_reviewer"
ROLES = [STAFF, REVIEWER, BRANCH, COMMITTEE, OFFICE, ADMIN]
EVERYONE = set(ROLES)
OFFICE_UP = {OFFICE, ADMIN}
REVIEWERS_UP = {REVIEWER, OFFICE, ADMIN}
# the record's review chain: every reviewer reads (in their scope), the office
# reads everything and decides nothing
RECORD_DECIDERS = {REVIEWER, BRANCH, COMMITTEE, ADMIN}
RECORD_READERS = RECORD_DECIDERS | {OFFICE}

# Open to anyone who can reach the hub, and why.
PUBLIC = {
    "static": "style sheet",
    "auth.login": "the sign-in page",
    "auth.logout": "signing out",
    "i18n.switch": "choosing the language",
    "api.health": "monitoring: counts only",
    "openapi.openapi_json": "the API's description",
    "events.zone_feed": "iCal feed: calendar apps cannot sign in; a per-feed token instead",
    "events.department_feed": "iCal feed: calendar apps cannot sign in; a per-feed token instead",
    "events.person_feed": "iCal feed of a person's registered events: a per-feed token instead",
}
PUBLIC_PREFIXES = {
    "open311.": "Open311 GeoReport v2: services public; requests need an api_key or a "
                "dashboard session (or public_read in hub.json); media by signed link",
}

# endpoint -> the roles that may use it.
POLICY = {
    "pages.today": OFFICE_UP,
    "pages.event": OFFICE_UP,
    "events_api.list_events": OFFICE_UP,
    "events_api.event_attendance": OFFICE_UP,
    "api.zone_occupancy": OFFICE_UP,
    "hotspots_api.hotspot_analysis": REVIEWERS_UP,
    "group.index": OFFICE_UP,
    "group_api.summary": OFFICE_UP,
    # events, zones, live attendance
    "pages.event_live": OFFICE_UP,
    "events.index": OFFICE_UP,
    "events.create": OFFICE_UP,
    "events.edit": OFFICE_UP,
    "events.delete": OFFICE_UP,
    "events_api.create_event": OFFICE_UP,
    "events_api.get_event": OFFICE_UP,
    "events_api.update_event": OFFICE_UP,
    "zones.index": OFFICE_UP,
    "zones.create": OFFICE_UP,
    "zones.edit": OFFICE_UP,
    "zones.upload_plan": OFFICE_UP,
    "zones.plan_image": REVIEWERS_UP,
    "zones_api.list_zones": REVIEWERS_UP,
    "zones_api.list_floor_plans": REVIEWERS_UP,
    "zones_api.create_zone": OFFICE_UP,
    "zones_api.update_zone": OFFICE_UP,
    # tickets board, photos, hours
    "tickets.index": REVIEWERS_UP,
    "tickets.ticket": REVIEWERS_UP,
    "tickets.transition": REVIEWERS_UP,
    "tickets.photo": REVIEWERS_UP,
    "tickets_api.list_tickets": REVIEWERS_UP,
    "tickets_api.ticket": REVIEWERS_UP,
    "tickets_api.ticket_transition": REVIEWERS_UP,
    "hours.index": REVIEWERS_UP,
    "hours.decide": REVIEWERS_UP,
    "hours_api.volunteer_hours": REVIEWERS_UP,
    "hours_api.hours_decision": REVIEWERS_UP,
    # the fleet of nodes, the staff Wi-Fi
    "fleet.nodes": OFFICE_UP,
    "fleet_api.api_nodes": OFFICE_UP,
    "fleet_api.api_node": OFFICE_UP,
    "fleet_api.api_move_node": OFFICE_UP,
    "fleet_api.api_wifi": OFFICE_UP,
    "fleet_api.api_set_wifi": {ADMIN},
    # people, exports, hotspots
    "people.index": REVIEWERS_UP,
    "people.person": REVIEWERS_UP,
    "people.person_export": REVIEWERS_UP,
    "people_api.api_person": REVIEWERS_UP,
    "people_api.api_person_export": REVIEWERS_UP,
    "people.event_export": OFFICE_UP,
    "people_api.api_event_export": OFFICE_UP,
    "hotspots.page": REVIEWERS_UP,
    # satisfaction surveys: a reviewer reads the tasks touching their department's
    # wards (others are 404); questionnaires and handing out tasks are the office's
    "surveys.board": REVIEWERS_UP,
    "surveys.task": REVIEWERS_UP,
    "surveys.export": REVIEWERS_UP,
    "surveys.create_task": OFFICE_UP,
    "surveys.questionnaires": OFFICE_UP,
    "surveys.create_questionnaire": OFFICE_UP,
    "surveys.questionnaire": OFFICE_UP,
    "surveys.change_questionnaire": OFFICE_UP,
    "surveys_api.list_tasks": REVIEWERS_UP,
    "surveys_api.task_summary": REVIEWERS_UP,
    "surveys_api.list_questionnaires": OFFICE_UP,
    "surveys_api.get_questionnaire": OFFICE_UP,
    "surveys_api.save_questionnaire": OFFICE_UP,
    # assessment: the office sets items; a reviewer reads their department's progress
    "assessment.index": REVIEWERS_UP,
    "assessment.save_item": OFFICE_UP,
    "assessment_api.api_overview": REVIEWERS_UP,
    "assessment_api.api_mine": {STAFF},
    # live scoring: the office runs a contest; the big screen and its JSON are for any
    # signed-in account (the hall's PC need not be the office's)
    "contests.presenter": OFFICE_UP,
    "contests.set_up": OFFICE_UP,
    "contests.step": OFFICE_UP,
    "contests.export": OFFICE_UP,
    "contests.screen": {STAFF} | REVIEWERS_UP,
    "contests_api.contest_json": {STAFF} | REVIEWERS_UP,
    # One's own record: accounts linked to a staff number (in this test only
    # the staff account is; the others get 403 for having no record).
    "people.me": {STAFF},
    "people.me_export": {STAFF},
    "people_api.api_me": {STAFF},
    # drafted summaries: an event's is the office's; a year's is its owner's to edit
    # (any account linked to a staff number: here only the staff one), and to read
    # and download for the office and the person's department reviewer
    "summaries.event": OFFICE_UP,
    "summaries.event_save": OFFICE_UP,
    "summaries.event_redraft": OFFICE_UP,
    "summaries.event_download": OFFICE_UP,
    "summaries.me_year": {STAFF},
    "summaries.me_year_save": {STAFF},
    "summaries.me_year_redraft": {STAFF},
    "summaries.me_year_download": {STAFF},
    "summaries.person_year": REVIEWERS_UP,
    "summaries.person_year_download": REVIEWERS_UP,
    # a year in one click (XLSX, PDF) and certificates of attendance (S001 attended ev-1)
    "yearbook.me_export": {STAFF},
    "yearbook.me_certificate": {STAFF},
    "yearbook.person_export": REVIEWERS_UP,
    "yearbook.person_certificate": REVIEWERS_UP,
    # registration: one's own (accounts linked to a staff number), the lists the office's
    "registration.mine": {STAFF},
    "registration.register": {STAFF},
    "registration.cancel": {STAFF},
    "registration_api.my_registrations": {STAFF},
    "registration_api.api_register": {STAFF},
    "registration_api.api_cancel": {STAFF},
    "registration_api.event_registrations": OFFICE_UP,
    # the record and its review chain (the example entry is S001's, at the
    # department level; S001 is in the reviewed department and WORLD_BRANCH)
    "records.inbox": RECORD_READERS,
    "records.person": RECORD_READERS,
    "records.entry": RECORD_READERS | {STAFF},
    "records.decide": RECORD_DECIDERS,
    "records.approve_many": RECORD_DECIDERS,
    "records_api.list_records": RECORD_READERS,
    "records_api.get_record": RECORD_READERS | {STAFF},
    "records_api.record_decision": RECORD_DECIDERS,
    "records_api.approve_records": RECORD_DECIDERS,
    "records.mine": {STAFF},
    "records.file": {STAFF},
    "records.resubmit": {STAFF},
    "records_api.my_records": {STAFF},
    "records_api.file_record": {STAFF},
    "records_api.resubmit_record": {STAFF},
    # roster and departments
    "roster.staff": OFFICE_UP,
    "audit_log.index": {ADMIN},
    "roster.person": OFFICE_UP,
    "roster.person_update": OFFICE_UP,
    "roster.person_pin": OFFICE_UP,
    "roster.person_password": OFFICE_UP,
    "roster.revoke_binding": OFFICE_UP,
    "roster.department_pins": OFFICE_UP,
    "roster.departments": OFFICE_UP,
    "roster.department_add": OFFICE_UP,
    "roster_api.api_staff": REVIEWERS_UP,
    "roster_api.api_person": OFFICE_UP,
    "roster_api.api_pin": OFFICE_UP,
    "roster_api.api_revoke": OFFICE_UP,
    "roster_api.api_departments": REVIEWERS_UP,
    "roster_api.api_department_add": OFFICE_UP,
    # roster import
    "roster_import.preview": OFFICE_UP,
    "roster_import.confirm": OFFICE_UP,
    "roster_import_api.import_roster": OFFICE_UP,
    # accounts: admin only
    "accounts.index": {ADMIN},
    "accounts.account": {ADMIN},
    "accounts.create": {ADMIN},
    "accounts.role": {ADMIN},
    "accounts.password": {ADMIN},
    "accounts_api.list_accounts": {ADMIN},
    "accounts_api.create_account": {ADMIN},
}


def example_url(rule, examples: dict) -> str:
    missing = [arg for arg in rule.arguments if arg not in examples]
    assert not missing, f"tests/hubworld.py has no example for {missing} ({rule.rule})"
    return rule.build({arg: examples[arg] for arg in rule.arguments})[1]


def _public(endpoint: str) -> bool:
    return endpoint in PUBLIC or any(endpoint.startswith(p) for p in PUBLIC_PREFIXES)


def signed_in_as(app, db, role: str):
    """``signed_in``, and for a branch reviewer an account of the world's
    party branch (which ``signed_in`` cannot give)."""
    if role != BRANCH:
        return signed_in(app, db, role)
    with db.conn:
        accounts.create(db, f"{role}-user", role, PASSWORD, branch=WORLD_BRANCH)
    client = app.test_client()
    assert sign_in(client, f"{role}-user").status_code == 303
    client.csrf = csrf_token(client, "/login")
    return client


@pytest.fixture
def setup(hub_db, hub_app, tmp_path):
    examples = world(hub_db, tmp_path)
    clients = {role: signed_in_as(hub_app, hub_db, role) for role in sorted(EVERYONE)}
    clients[None] = hub_app.test_client()
    clients[None].csrf = csrf_token(clients[None])  # so that CSRF is not what refuses it
    return hub_app, clients, examples


def test_every_route_has_a_policy(setup):
    app, _, _ = setup
    unknown = sorted({rule.endpoint for rule in app.url_map.iter_rules()
                      if not _public(rule.endpoint)} - set(POLICY))
    assert not unknown, f"routes with no decision on who may use them: {unknown}"
    stale = sorted(set(POLICY) - {rule.endpoint for rule in app.url_map.iter_rules()})
    assert not stale, f"POLICY names routes that no longer exist: {stale}"


def _tries(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if _public(rule.endpoint):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def _request(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    headers = {"X-CSRFToken": client.csrf} if hasattr(client, "csrf") else {}
    return client.open(url, method=method, json={}, headers=headers)


@pytest.mark.parametrize("role", [None, *ROLES])
def test_each_role_gets_exactly_what_the_policy_allows(setup, role):
    app, clients, examples = setup
    client = clients[role]
    wrong = []
    tried = 0
    for rule, method in _tries(app):
        url = example_url(rule, examples)
        status = _request(client, method, url).status_code
        tried += 1
        allowed = role in POLICY.get(rule.endpoint, set())
        if role is None:
            ok = status == 401 if rule.rule.startswith("/api/") else status == 302
        elif allowed:
            # Allowed: whatever the answer, it is not a refusal of the person.
            ok = status not in (401, 403) and status < 500 and (method != "GET" or status < 400)
        else:
            ok = status == 403
        if not ok:
            wrong.append(f"{method} {url} ({rule.endpoint}) -> {status}")
    assert tried >= len(POLICY)
    assert not wrong, f"role {role}: " + "; ".join(wrong)


def test_anonymous_pages_send_people_to_sign_in_and_come_back(setup):
    app, clients, examples = setup
    response = clients[None].get("/events/ev-1?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/events/ev-1?x%3D1"
    token = csrf_token(clients[None])
    back = clients[None].post("/login?next=/events/ev-1?x%3D1",
                              data={"username": "office-user", "password": PASSWORD,
                                    "csrf_token": token})
    assert back.status_code == 303 and back.headers["Location"] == "/events/ev-1?x=1"
