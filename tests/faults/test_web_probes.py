"""Hub web probes: stored XSS and template injection, SQL injection, role
escalation, and state-changing requests without a CSRF token.

Probes go in through the hub's own doors (the node uplink for report notes,
categories, zones and staff ids; the dashboard and the API for transition
comments, roster rows, department, event and zone names, account names;
Open311 for a request's description), then every page and API route is
fetched as an admin with those objects as its parameters. A stored value is
shown escaped wherever it is shown (it appears there as text, and its markup
never as markup), ``{{7*7}}`` never turns into 49, no page links to
``javascript:``, no answer is a 500, and the SQL probes change nothing: the
tables stay, and a filter matches its text literally, never everything.
Escalation attempts by office, reviewer and staff accounts end in 403/404
with nothing changed. tests/test_csrf.py covers every POST without a token;
here the PUT and DELETE routes and the sign-in form itself.
"""

import csv
import html
import io
import json
import re
import uuid
import xml.etree.ElementTree as ElementTree
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from hub.db import open_db
from hub.ingest.store import write_batch
from hub.tickets import tickets
from protocol.clock import iso
from protocol.records import validate

from ..hubweb import PASSWORD, csrf_token, make_app, post_json, sign_in, signed_in
from ..hubworld import OTHER, REVIEWED, world
from ..scale import report

SSTI = "{{7*7}}ssti"  # rendered by a template engine it would read 49ssti
PROBES = (
    "'; DROP TABLE staff; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    SSTI,
    "</textarea><svg onload=alert(1)>",
)
# What must never reach a page as markup (or, for the template probe, as its value).
RAW = re.compile(r"<script>alert|<img src=x|<svg onload|49ssti", re.I)
JS_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)
TALLY = Counter()


@pytest.fixture
def hub(tmp_path):
    db = open_db(tmp_path / "hub.db")
    examples = world(db, tmp_path)
    app = make_app(tmp_path / "hub.db", PHOTOS_DIR=str(tmp_path / "photos"))
    admin = signed_in(app, db, "admin")
    yield app, db, admin, examples
    db.close()


@pytest.fixture(scope="module", autouse=True)
def tally():
    yield
    report("attacks_web", {"tried": TALLY["tried"], "refused": TALLY["refused"]})


def refused(response, *statuses) -> bool:
    TALLY["tried"] += 1
    ok = response.status_code in statuses
    TALLY["refused"] += ok
    return ok


def page_text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def snapshot(db) -> dict:
    """Every table and its rows (the audit log and sign-in failures aside)."""
    tables = [row[0] for row in db.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT IN ('audit_log', 'login_failures') ORDER BY name")]
    return {table: db.conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
            for table in tables}


# --- storing the probes ---------------------------------------------------------------

def store_probes(app, db, admin, examples) -> dict:
    """Put every probe into every stored text field we can reach; the ids made."""
    made = {"staff_id": [], "dept": [], "event_id": [], "zone": [], "ticket_id": [],
            "username": [], "shown": []}  # shown: (path, text it must show)
    now = datetime.now(timezone.utc)
    for n, probe in enumerate(PROBES, 1):
        dept = f"{probe[:20]}-{n}"
        assert post_json(admin, "/api/v1/departments",
                         {"department": dept, "name": probe}).status_code == 201
        made["dept"].append(dept)
        made["shown"].append(("/departments/", probe))

        zone = f"xss-{n}"
        answer = post_json(admin, "/api/v1/zones", {"zone": zone, "name": probe,
                                                    "campus": probe, "building": "B", "floor": "1"})
        assert answer.status_code == 201, answer.get_json()
        made["zone"].append(zone)
        made["shown"].append(("/zones/", probe))

        answer = post_json(admin, "/api/v1/events", {
            "title": probe, "kind": "lecture", "zones": [zone],
            "start": iso(now - timedelta(minutes=30)), "end": iso(now + timedelta(hours=1)),
            "expected": {"departments": [dept], "staff": []}})
        assert answer.status_code == 201, answer.get_json()
        made["event_id"].append(answer.get_json()["id"])
        made["shown"].append((f"/events/{answer.get_json()['id']}", probe))

        username = re.sub(r"[\s/]", "_", probe)  # user names have no white space or /
        assert post_json(admin, "/api/v1/accounts", {
            "username": username, "role": "office", "password": PASSWORD}).status_code == 201
        made["username"].append(username)
        made["shown"].append(("/accounts/", username))

    # the roster: one person per probe (names), in the probe departments
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["staff_number", "name", "department", "role"])
    for n, (probe, dept) in enumerate(zip(PROBES, made["dept"]), 1):
        writer.writerow([f"X{n:03d}", probe, dept, "staff"])
        made["staff_id"].append(f"X{n:03d}")
        made["shown"] += [("/staff/", probe), (f"/staff/X{n:03d}", probe)]
    answer = post_json(admin, "/api/v1/staff/import", {"csv": out.getvalue()})
    assert answer.status_code == 200, answer.get_json()

    # reports from a node: note, category, zone and staff id are the node's text
    records = [validate({
        "id": str(uuid.uuid4()), "type": "report", "ts": iso(now), "report_id": str(uuid.uuid4()),
        "staff_id": probe, "category": probe, "note": "\n".join(PROBES), "zone": probe,
        "photos": [], "taken_at": iso(now - timedelta(hours=n))})
        for n, probe in enumerate(PROBES)]
    write_batch(db, "rounds/v1/test/node/hall-a-1/up/batch", "hall-a-1", records, [])
    with db.conn:
        tickets.materialize(db)
    ids = {t["report_id"]: t["id"] for t in tickets.list_tickets(db)}
    for record, probe in zip(records, PROBES):
        ticket_id = ids[record["report_id"]]
        made["ticket_id"].append(ticket_id)
        answer = admin.post(f"/tickets/{ticket_id}/transition",
                            data={"to": "assigned", "comment": probe, "csrf_token": admin.csrf})
        assert answer.status_code == 303, page_text(answer)[:300]
        made["shown"] += [(f"/tickets/{ticket_id}", probe), ("/tickets/", probe)]

    # Open311: a request's description is a ticket note too
    with db.conn:
        db["open311_keys"].insert({"api_key": "k-probe", "name": "probe client"})
    for probe in PROBES:
        answer = app.test_client().post("/open311/v2/requests.json", data={
            "api_key": "k-probe", "service_code": "hygiene", "description": probe,
            "address_string": probe})  # no such zone: the text becomes the ticket's zone
        assert answer.status_code == 200, answer.get_data(as_text=True)
        made["ticket_id"].append(int(answer.get_json()[0]["service_request_id"]))
    return made


def urls(app, examples: dict, made: dict):
    """Every GET route, once per probe object for each parameter it takes."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint == "static" \
                or rule.endpoint.startswith("open311."):  # fetched on their own below
            continue
        variants = [dict(examples)]
        for arg in rule.arguments:
            key = {"department": "dept"}.get(arg, arg)
            if made.get(key):
                variants += [{**examples, arg: value} for value in made[key]]
        for values in variants:
            yield rule, rule.build({arg: values[arg] for arg in rule.arguments})[1]


def unsafe(url: str, response) -> list[str]:
    """What of the probes ``response`` lets through as markup (or as 49)."""
    assert response.status_code < 500, (url, response.status_code)
    body = response.get_data(as_text=True) if response.mimetype.startswith(
        ("text/", "application/json", "application/xml", "image/svg")) else ""
    found = ["49ssti"] if "49ssti" in body else []
    if response.mimetype in ("text/html", "image/svg+xml", "application/xml", "text/xml"):
        found += sorted({m.group(0) for m in RAW.finditer(body)} - {"49ssti"})
        found += ["javascript: link"] if JS_URL.search(body) else []
    if response.mimetype in ("image/svg+xml", "application/xml", "text/xml"):
        ElementTree.fromstring(response.get_data())  # well-formed: nothing broke out
    if url.startswith("/api/v1/"):  # JSON or a download, never a page a browser would run
        assert response.mimetype != "text/html", (url, response.mimetype)
    return found


def check_safe(url: str, response) -> None:
    found = unsafe(url, response)
    assert not found, (url, found)


def test_stored_probes_are_shown_escaped_on_every_page(hub):
    app, db, admin, examples = hub
    made = store_probes(app, db, admin, examples)
    examples["ticket_id"] = made["ticket_id"][0]
    before = snapshot(db)
    fetched, leaks = 0, set()
    for rule, url in urls(app, examples, made):
        leaks |= {(rule.endpoint, leak) for leak in unsafe(url, admin.get(url))}
        fetched += 1
    for fmt in ("json", "xml"):
        for url in [f"/open311/v2/requests.{fmt}", f"/open311/v2/services.{fmt}",
                    *(f"/open311/v2/requests/{ticket}.{fmt}" for ticket in made["ticket_id"])]:
            check_safe(url, app.test_client().get(url, query_string={"api_key": "k-probe"}))
            fetched += 1
    assert not leaks, f"shown unescaped: {sorted(leaks)}"
    # the probes were shown, as text
    for path, probe in made["shown"]:
        assert probe in page_text(admin.get(path)), (path, probe)
    assert snapshot(db) == before, "reading pages changed the database"
    assert fetched > 100
    TALLY.update(tried=fetched, refused=fetched)  # each page a look at every probe it shows


# search boxes and filters: (path, the query parameters the probe goes into)
SEARCHES = (("/tickets/", ("zone", "category", "department", "state")),
            ("/people/", ("q", "department")), ("/staff/", ("q", "department")),
            ("/api/v1/tickets", ("zone", "category", "state")),
            ("/api/v1/tickets", ("department", "staff_id")),
            ("/api/v1/staff", ("q", "department")), ("/api/v1/hours", ("staff_id", "state")),
            ("/hotspots/", ("category", "plan")), ("/api/v1/events", ("date",)),
            ("/events/", ("zone",)), ("/", ("date",)),
            ("/open311/v2/requests.json", ("service_code", "status")),
            ("/login", ("next",)))


def test_sql_probes_in_filters_and_search_boxes_match_literally(hub):
    app, db, admin, examples = hub
    before = snapshot(db)
    for probe in PROBES + ("1' OR '1'='1", "%", "_", "hall-a' --", "x\x00y"):
        for path, names in SEARCHES:
            response = admin.get(path, query_string={name: probe for name in names})
            check_safe(path, response)
            assert refused(response, 200, 303, 400, 404), (path, probe, response.status_code)
        # a filter matches its text, never everything
        tickets = admin.get("/api/v1/tickets", query_string={"zone": probe}).get_json()
        assert tickets == [], (probe, tickets)
        staff = admin.get("/api/v1/staff", query_string={"q": probe}).get_json()
        assert staff == [], (probe, staff)
    assert admin.get("/api/v1/staff", query_string={"q": "Zhang"}).get_json(), "the control"
    assert snapshot(db) == before


def state(db) -> dict:
    return {name: rows for name, rows in snapshot(db).items()
            if name in ("accounts", "staff", "tickets", "ticket_history", "volunteer_ledger",
                        "departments", "site_settings", "api_tokens")}


def test_role_escalation_is_refused_and_changes_nothing(hub):
    app, db, admin, examples = hub
    office = signed_in(app, db, "office")
    reviewer = signed_in(app, db, "dept_reviewer", department=REVIEWED)
    staff = signed_in(app, db, "staff", staff_id="S001")
    other_ticket, other_entry = examples["other_ticket_id"], examples["other_entry_id"]
    before = state(db)
    make_admin = {"username": "mallory", "role": "admin", "password": PASSWORD}
    roster_admin = "staff_number,name,department,role\nS001,Zhang Min,{d},admin\n".format(
        d=REVIEWED)
    wifi = {"ssid": "Evil-Twin", "psk": "x" * 12}
    for client, name in ((office, "office"), (reviewer, "reviewer"), (staff, "staff")):
        def form(path, data, client=client):
            return client.post(path, data={**data, "csrf_token": client.csrf})

        def put(path, body, client=client):
            return client.put(path, json=body, headers={"X-CSRFToken": client.csrf})

        attempts = [
            post_json(client, "/api/v1/accounts", make_admin),
            form("/accounts/", make_admin),
            form(f"/accounts/{name}-user/role", {"role": "admin"}),
            form("/accounts/admin-user/password", {"password": "x" * 12}),
            put("/api/v1/site/wifi", wifi),
        ]
        assert all(refused(r, 403) for r in attempts), [r.status_code for r in attempts]
        if client is not office:  # the roster is office's: the others may not touch it
            attempts = [post_json(client, "/api/v1/staff/import", {"csv": roster_admin}),
                        form("/staff/S001/edit", {"name": "Zhang Min", "department": REVIEWED,
                                                  "role": "admin"})]
            assert all(refused(r, 403) for r in attempts), [r.status_code for r in attempts]
    # office runs the roster, but may not make anyone admin through it
    attempts = [post_json(office, "/api/v1/staff/import", {"csv": roster_admin}),
                office.post("/staff/S001/edit", data={"name": "Zhang Min", "department": REVIEWED,
                                                      "role": "admin", "csrf_token": office.csrf})]
    assert all(refused(r, 400, 409, 422) for r in attempts), [r.status_code for r in attempts]
    assert "only an admin" in json.dumps(attempts[0].get_json())

    # a reviewer sees nothing of another department, whatever the query says
    for url in (f"/tickets/{other_ticket}", f"/api/v1/tickets/{other_ticket}",
                f"/people/{examples['other_staff_id']}",
                f"/api/v1/people/{examples['other_staff_id']}"):
        assert refused(reviewer.get(url), 404), url
    for url in (f"/tickets/{other_ticket}/transition",):
        assert refused(reviewer.post(url, data={"to": "in_progress",
                                                "csrf_token": reviewer.csrf}), 404)
    assert refused(post_json(reviewer, f"/api/v1/tickets/{other_ticket}/transition",
                             {"to": "in_progress"}), 404)
    assert refused(post_json(reviewer, f"/api/v1/hours/{other_entry}/decision",
                             {"approve": True}), 404)
    for department in (OTHER, "", "%", f"{OTHER}' OR '1'='1"):
        listed = reviewer.get("/api/v1/tickets", query_string={"department": department})
        TALLY["tried"] += 1
        assert {t["department"] for t in listed.get_json()} <= {REVIEWED}, department
        TALLY["refused"] += 1
        hours = reviewer.get("/api/v1/hours", query_string={"department": department})
        TALLY["tried"] += 1
        assert examples["other_staff_id"] not in json.dumps(hours.get_json())
        TALLY["refused"] += 1
        page = reviewer.get("/tickets/", query_string={"department": department})
        assert f"/tickets/{other_ticket}\"" not in page.get_data(as_text=True)
    # staff: only their own record
    for url in ("/api/v1/tickets", f"/api/v1/people/{examples['other_staff_id']}",
                "/api/v1/hours", "/tickets/", "/staff/"):
        assert refused(staff.get(url), 403), url
    assert state(db) == before

    # a PIN session is never more than staff, even for a person the roster made admin
    import_ok = post_json(admin, "/api/v1/staff/import", {"csv": roster_admin})
    assert import_ok.status_code == 200, import_ok.get_json()
    pin = post_json(admin, "/api/v1/staff/S001/pin", {}).get_json()["pin"]
    phone = app.test_client()
    assert sign_in(phone, "S001", pin).status_code == 303
    assert refused(phone.get("/accounts/"), 403) and refused(phone.get("/api/v1/accounts"), 403)
    assert phone.get("/api/v1/me").status_code == 200


def test_state_changes_need_a_csrf_token_put_delete_and_sign_in_included(hub):
    app, db, admin, examples = hub
    before = snapshot(db)
    rules = [rule for rule in app.url_map.iter_rules()
             if rule.methods & {"PUT", "DELETE", "PATCH"}]
    assert rules
    for rule in rules:
        url = rule.build({arg: examples[arg] for arg in rule.arguments})[1]
        for method in sorted(rule.methods & {"PUT", "DELETE", "PATCH"}):
            response = admin.open(url, method=method, json={"ssid": "x", "name": "x"})
            assert refused(response, 400), (method, url, response.status_code)
            assert "CSRF" in response.get_data(as_text=True)
    # login CSRF: a sign-in form posted from elsewhere (no token) does not sign in
    stranger = app.test_client()
    response = stranger.post("/login", data={"username": "admin-user", "password": PASSWORD})
    assert refused(response, 400)
    assert stranger.get("/api/v1/tickets").status_code == 401
    # a token from another session does not do either
    other = app.test_client()
    response = other.post("/login", data={"username": "admin-user", "password": PASSWORD,
                                          "csrf_token": csrf_token(app.test_client())})
    assert refused(response, 400)
    assert snapshot(db) == before


REDIRECTS = [(route, target) for route in ("login", "lang")
             for target in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                            "/%5C%5Cevil.example", "/\t/evil.example", "/\n/evil.example")]


@pytest.mark.parametrize("route,target", REDIRECTS)
def test_redirect_targets_stay_on_the_hub(hub, route, target):
    """``next`` after sign-in and after choosing a language: a path on this
    hub only (a browser reads ``/\\t/host`` and ``/\\host`` as ``//host``)."""
    app, db, admin, examples = hub
    client = app.test_client()
    if route == "login":
        response = client.post("/login", query_string={"next": target}, data={
            "username": "admin-user", "password": PASSWORD, "csrf_token": csrf_token(client)})
    else:
        response = client.get("/lang/en", query_string={"next": target})
    location = response.headers.get("Location", "")
    assert refused(response, 302, 303), response.status_code
    assert location.startswith("/") and not location.startswith("//"), location
    assert not re.match(r"/[\\/\s]", location), location
