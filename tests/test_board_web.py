"""The tickets board, a ticket's page, ticket photos and the volunteer-hours
review, against a real hub database with tickets made from ingested reports."""

import hashlib
import io
import json
import re
from datetime import datetime, timedelta, timezone
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from hub.ingest import photos
from hub.tickets import hours, tickets
from protocol.clock import iso

from .conftest import HUB_BACKEND
from .hubweb import make_app, signed_in
from .test_tickets import T0, ingest, report, sha

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime.now(timezone.utc)
# Seeded routing: hygiene -> environmental_services, safety -> security,
# facilities -> facilities, anything else -> civility_office.
REVIEWED = "environmental_services"


@pytest.fixture
def db(hub_db):
    hub_db["staff"].insert_all([
        {"staff_id": "N001", "name": "Li Na", "department": REVIEWED},
        {"staff_id": "N002", "name": "Wang Wei", "department": "security"},
    ])
    return hub_db


# The clients read the pages in English: the assertions read the English strings.
@pytest.fixture
def office(hub_app, db):
    return signed_in(hub_app, db, "office", username="H001", lang="en")


@pytest.fixture
def reviewer(hub_app, db):
    return signed_in(hub_app, db, "dept_reviewer", username="R001", department=REVIEWED,
                     lang="en")


def file_at(db, when: datetime, **fields) -> int:
    """Ingest one report taken at ``when`` and materialize it then; its id."""
    record = report(minute=(when - T0).total_seconds() / 60, **fields)
    ingest(db, record)
    with db.atomic():
        [ticket_id] = tickets.materialize(db, now=when)
    return int(ticket_id)


def listed(client, query: str = "") -> list[int]:
    response = client.get("/tickets/" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [int(n) for n in re.findall(r'data-ticket="(\d+)"', response.get_data(as_text=True))]


def history(db, ticket_id) -> list[tuple]:
    return db.conn.execute("SELECT who, from_state, to_state, comment FROM ticket_history "
                           "WHERE ticket_id = ? ORDER BY id", (ticket_id,)).fetchall()


def audits(db, action) -> list[tuple]:
    return [(who, target, json.loads(detail)) for who, target, detail in db.conn.execute(
        "SELECT who, target, detail FROM audit_log WHERE action = ? ORDER BY id", (action,))]


def jpeg(color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(out, "JPEG")
    return out.getvalue()


def add_photo(db, directory, payload: bytes) -> str:
    """A photo as ingest receives it: the file, content-addressed, and its row."""
    digest = photos.verify(payload, hashlib.sha256(payload).hexdigest()).sha256
    path = photos.store(directory, digest, payload)
    db["photos"].insert({"sha256": digest, "size": len(payload), "path": str(path),
                         "received_at": iso(NOW), "dhash": None})
    return digest


# -- the board's filters ---------------------------------------------------------------

@pytest.fixture
def board(db):
    """Four tickets an hour apart (newest last): hygiene on ward-3, safety in
    the ICU, facilities on ward-3, hygiene in the lobby (then rejected)."""
    db["zones"].insert_all([{"zone": "ward-3", "name": "Ward 3"}, {"zone": "icu", "name": "ICU"},
                            {"zone": "lobby", "name": "Main lobby"}])
    base = NOW - timedelta(hours=5)
    ids = {
        "hygiene": file_at(db, base, category="hygiene", zone="ward-3"),
        "safety": file_at(db, base + timedelta(hours=1), category="safety", zone="icu",
                          staff_id="N002"),
        "facilities": file_at(db, base + timedelta(hours=2), category="facilities",
                              zone="ward-3"),
        "rejected": file_at(db, base + timedelta(hours=3), category="hygiene", zone="lobby"),
    }
    tickets.transition(db, ids["rejected"], "rejected", "H009", "not ours")
    return ids


def test_board_shows_open_tickets_newest_first_by_default(office, board):
    assert listed(office) == [board["facilities"], board["safety"], board["hygiene"]]


def test_board_state_filter_takes_several_states_or_all(office, db, board):
    tickets.transition(db, board["safety"], "assigned", "H009")
    assert listed(office, "?f=1&state=assigned") == [board["safety"]]
    assert listed(office, "?f=1&state=rejected&state=new") == [
        board["rejected"], board["facilities"], board["hygiene"]]
    assert len(listed(office, "?f=1")) == 4  # nothing ticked: every state


def test_board_department_category_and_zone_filters(office, board):
    assert listed(office, f"?department={REVIEWED}") == [board["hygiene"]]
    assert listed(office, "?department=security") == [board["safety"]]
    assert listed(office, "?category=facilities") == [board["facilities"]]
    assert listed(office, "?zone=ward-3") == [board["facilities"], board["hygiene"]]
    assert listed(office, "?zone=ward-3&category=hygiene") == [board["hygiene"]]
    assert listed(office, "?zone=nowhere") == []


def test_board_date_filter_uses_hospital_days(office, db):
    # 23:30 on the 20th and 00:30 on the 21st in Shanghai: both the 20th in UTC.
    late = file_at(db, datetime(2026, 11, 20, 23, 30, tzinfo=TZ), zone="a")
    early = file_at(db, datetime(2026, 11, 21, 0, 30, tzinfo=TZ), zone="b")
    later = file_at(db, datetime(2026, 11, 23, 12, 0, tzinfo=TZ), zone="c")
    assert listed(office, "?from=2026-11-21&to=2026-11-21") == [early]
    assert listed(office, "?from=2026-11-20&to=2026-11-20") == [late]
    assert listed(office, "?from=2026-11-21") == [later, early]
    assert listed(office, "?to=2026-11-22") == [early, late]


@pytest.mark.parametrize("query, reason", [
    ("?state=bogus", "Unknown state: bogus"),
    ("?from=21/11/2026", "must be a date"),
    ("?from=2026-11-22&to=2026-11-21", "must not be after"),
    ("?page=0", "Page must be"),
])
def test_board_refuses_bad_filters_with_a_reason(office, board, query, reason):
    response = office.get("/tickets/" + query)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)


def test_board_columns_labels_and_names(office, board):
    html = office.get("/tickets/").get_data(as_text=True)
    row = _row(html, board["safety"])
    assert "Safety hazard" in row and "ICU" in row and "security" in row and "New" in row
    reported = (NOW - timedelta(hours=4)).astimezone(TZ)  # in the hospital's zone
    assert reported.strftime("%Y-%m-%d %H:%M") in row


def _row(html: str, ticket_id: int) -> str:
    start = html.index(f'<tr id="ticket-{ticket_id}"')
    return html[start:html.index("</tr>", start)]


def test_overdue_open_tickets_are_highlighted(office, db):
    overdue = file_at(db, NOW - timedelta(hours=9), category="hygiene", zone="a")  # due 8 h
    in_time = file_at(db, NOW - timedelta(hours=1), category="hygiene", zone="b")
    done_late = file_at(db, NOW - timedelta(hours=10), category="hygiene", zone="c")
    for state in ("assigned", "in_progress", "resolved"):
        tickets.transition(db, done_late, state, "H009")
    html = office.get("/tickets/?f=1").get_data(as_text=True)
    assert 'class="state-new overdue"' in _row(html, overdue)
    assert "overdue-marker" in _row(html, overdue) and ">overdue<" in _row(html, overdue)
    assert "overdue" not in _row(html, in_time)
    assert "overdue" not in _row(html, done_late)  # resolved: no longer counts
    page = office.get(f"/tickets/{overdue}").get_data(as_text=True)
    assert "overdue-marker" in page


def test_board_pages_by_200(office, db):
    records = [report(minute=i, zone=f"z{i}") for i in range(201)]
    ingest(db, *records)
    with db.atomic():
        tickets.materialize(db, now=NOW)
    first = office.get("/tickets/?zone=&f=1&state=new").get_data(as_text=True)
    ids = [int(n) for n in re.findall(r'data-ticket="(\d+)"', first)]
    assert len(ids) == 200 and ids == sorted(ids, reverse=True)
    [next_page] = re.findall(r'rel="next" href="([^"]+)"', first)
    second = listed(office, unescape(next_page).removeprefix("/tickets/"))
    assert second == [min(ids) - 1]
    assert 'rel="next"' not in office.get(unescape(next_page)).get_data(as_text=True)


@pytest.mark.skipif(HUB_BACKEND == "postgresql",
                    reason="SQLite's query plan (PostgreSQL plans by table statistics)")
def test_the_department_filter_reads_the_department_index(db):
    seen = []
    db.conn.set_trace_callback(seen.append)
    tickets.list_tickets(db, state=list(tickets.OPEN_STATES), department=REVIEWED,
                         since=iso(NOW - timedelta(days=1)), until=iso(NOW), limit=201)
    db.conn.set_trace_callback(None)
    [sql] = [s for s in seen if s.startswith("SELECT")]
    plan = " ".join(row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql))
    assert "INDEX tickets_department" in plan, plan


# -- reviewers ----------------------------------------------------------------------------

def test_reviewer_sees_only_their_department(reviewer, board):
    assert listed(reviewer) == [board["hygiene"]]
    assert listed(reviewer, "?department=security") == [board["hygiene"]]  # forced
    html = reviewer.get("/tickets/").get_data(as_text=True)
    assert 'name="department"' not in html
    assert reviewer.get(f"/tickets/{board['hygiene']}").status_code == 200
    assert reviewer.get(f"/tickets/{board['safety']}").status_code == 404


def test_reviewer_cannot_move_another_departments_ticket(reviewer, db, board):
    response = reviewer.post(f"/tickets/{board['safety']}/transition",
                             data={"to": "assigned", "csrf_token": reviewer.csrf})
    assert response.status_code == 404
    assert tickets.get_ticket(db, board["safety"])["state"] == "new"
    assert audits(db, "ticket.transition") == []


def test_staff_may_not_open_the_board(hub_app, db):
    staff = signed_in(hub_app, db, "staff", staff_id="N001")
    assert staff.get("/tickets/").status_code == 403
    assert staff.get("/hours/").status_code == 403
    assert hub_app.test_client().get("/tickets/").status_code == 302  # to the sign-in page


# -- moving a ticket through its page --------------------------------------------------------

def test_transition_through_the_page_form(office, db, board):
    ticket_id = board["hygiene"]
    page = office.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    assert re.findall(r'<option value="(\w+)"', page) == ["assigned", "rejected"]
    response = office.post(f"/tickets/{ticket_id}/transition",
                           data={"to": "assigned", "comment": "cleaner sent",
                                 "csrf_token": office.csrf})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/tickets/{ticket_id}")
    assert tickets.get_ticket(db, ticket_id)["state"] == "assigned"
    assert history(db, ticket_id)[-1] == ("H001", "new", "assigned", "cleaner sent")
    assert audits(db, "ticket.transition") == [
        ("H001", f"ticket:{ticket_id}", {"from": "new", "to": "assigned"})]
    after = office.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    assert "moved to Assigned" in after and "cleaner sent" in after
    assert re.findall(r'<option value="(\w+)"', after) == ["in_progress", "rejected"]


def test_transition_without_csrf_token_changes_nothing(office, db, board):
    ticket_id = board["hygiene"]
    before = history(db, ticket_id)
    response = office.post(f"/tickets/{ticket_id}/transition", data={"to": "assigned"})
    assert response.status_code == 400
    assert tickets.get_ticket(db, ticket_id)["state"] == "new"
    assert history(db, ticket_id) == before and audits(db, "ticket.transition") == []


def test_a_disallowed_transition_says_why_and_changes_nothing(office, db, board):
    ticket_id = board["hygiene"]
    before = history(db, ticket_id)
    response = office.post(f"/tickets/{ticket_id}/transition",
                           data={"to": "closed", "comment": "kept text",
                                 "csrf_token": office.csrf})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "A ticket that is New cannot be moved to Closed." in html
    assert ">kept text</textarea>" in html
    bogus = office.post(f"/tickets/{ticket_id}/transition",
                        data={"to": "done", "csrf_token": office.csrf})
    assert bogus.status_code == 400
    assert tickets.get_ticket(db, ticket_id)["state"] == "new"
    assert history(db, ticket_id) == before and audits(db, "ticket.transition") == []
    assert office.post("/tickets/999/transition",
                       data={"to": "assigned", "csrf_token": office.csrf}).status_code == 404


def test_ticket_page_shows_details_reporters_and_history(office, db):
    db["zones"].insert({"zone": "ward-3", "name": "Ward 3"})
    first = file_at(db, NOW - timedelta(hours=1), zone="ward-3", staff_id="N001")
    ingest(db, report(minute=(NOW - T0).total_seconds() / 60 - 50, zone="ward-3",
                      staff_id="N002"))
    with db.atomic():
        assert tickets.materialize(db, now=NOW) == []  # a duplicate of the first
    tickets.transition(db, first, "assigned", "H009", "sent a cleaner", now=NOW)
    html = office.get(f"/tickets/{first}").get_data(as_text=True)
    assert "Li Na" in html and "Wang Wei" in html and "duplicate" in html
    assert "Hygiene" in html and "Ward 3" in html and "spill by bed 4" in html
    assert NOW.astimezone(TZ).strftime("%Y-%m-%d %H:%M") in html  # the move, Shanghai time
    assert "H009" in html and "sent a cleaner" in html and "New → Assigned" in html
    assert office.get("/tickets/999").status_code == 404


def test_a_note_with_markup_is_escaped(office, reviewer, db):
    ticket_id = file_at(db, NOW, note="<script>alert(1)</script>")
    for client, path in ((office, "/tickets/"), (office, f"/tickets/{ticket_id}"),
                         (reviewer, "/tickets/")):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# -- photos -----------------------------------------------------------------------------------

def test_a_tickets_photo_is_served_and_shown(office, db, tmp_path):
    payload = jpeg()
    digest = add_photo(db, tmp_path / "photos", payload)
    ticket_id = file_at(db, NOW, photos=[digest])
    response = office.get(f"/photos/{digest}.jpg")
    assert response.status_code == 200 and response.data == payload
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, max-age=86400"
    src = f'src="/photos/{digest}.jpg"'
    assert src in _row(office.get("/tickets/").get_data(as_text=True), ticket_id)
    assert src in office.get(f"/tickets/{ticket_id}").get_data(as_text=True)


def test_photos_in_a_configured_directory(db, tmp_path, hub_location):
    app = make_app(hub_location, PHOTOS_DIR=str(tmp_path / "elsewhere"))
    digest = add_photo(db, tmp_path / "elsewhere", jpeg())
    client = signed_in(app, db, "office")
    assert client.get(f"/photos/{digest}.jpg").status_code == 200


@pytest.mark.parametrize("name", [
    sha("never-received"),  # well formed, no row
    "XYZ", sha("x").upper(), sha("x")[:63],
    "..%2f..%2fhub.db", "..%2F..%2Fetc%2Fpasswd",
])
def test_unknown_or_malformed_photo_names_are_404(office, name):
    assert office.get(f"/photos/{name}.jpg").status_code == 404


def test_a_photo_row_pointing_outside_the_photos_directory_is_not_served(office, db, tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(jpeg())
    digest = sha("outside")
    db["photos"].insert({"sha256": digest, "size": 1, "path": str(outside),
                         "received_at": iso(NOW)})
    link = tmp_path / "photos" / "ab" / f"{sha('link')}.jpg"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    db["photos"].insert({"sha256": sha("link"), "size": 1, "path": str(link),
                         "received_at": iso(NOW)})
    assert office.get(f"/photos/{digest}.jpg").status_code == 404
    assert office.get(f"/photos/{sha('link')}.jpg").status_code == 404


def test_reviewer_gets_only_their_departments_photos(reviewer, db, tmp_path):
    mine = add_photo(db, tmp_path / "photos", jpeg((10, 200, 10)))
    theirs = add_photo(db, tmp_path / "photos", jpeg((10, 10, 200)))
    second = add_photo(db, tmp_path / "photos", jpeg((200, 200, 10)))
    ticket_id = file_at(db, NOW, category="hygiene", zone="a", photos=[mine])
    file_at(db, NOW, category="safety", zone="b", photos=[theirs])
    ingest(db, report(minute=(NOW - T0).total_seconds() / 60 + 5, zone="a", staff_id="N002",
                      photos=[second]))
    with db.atomic():
        assert tickets.materialize(db, now=NOW) == []  # a duplicate, with its own photo
    assert reviewer.get(f"/photos/{mine}.jpg").status_code == 200
    assert reviewer.get(f"/photos/{second}.jpg").status_code == 200
    assert reviewer.get(f"/photos/{theirs}.jpg").status_code == 404
    page = reviewer.get(f"/tickets/{ticket_id}").get_data(as_text=True)
    assert f"/photos/{mine}.jpg" in page and f"/photos/{second}.jpg" in page


# -- volunteer hours ------------------------------------------------------------------------------

@pytest.fixture
def pending(db):
    """One pending 0.5 h entry for N001 (environmental services) and one for
    N002 (security), from two accepted tickets."""
    mine = file_at(db, NOW - timedelta(hours=2), zone="a", staff_id="N001")
    theirs = file_at(db, NOW - timedelta(hours=1), zone="b", staff_id="N002")
    for ticket_id in (mine, theirs):
        tickets.transition(db, ticket_id, "assigned", "H009")
    return {e["staff_id"]: e["id"] for e in hours.entries(db, state="pending")}


def decide(client, entry_id, decision):
    return client.post(f"/hours/{entry_id}/decision",
                       data={"decision": decision, "csrf_token": client.csrf})


def test_hours_page_lists_pending_entries_and_totals(office, pending):
    html = office.get("/hours/").get_data(as_text=True)
    assert f'id="entry-{pending["N001"]}"' in html and f'id="entry-{pending["N002"]}"' in html
    assert "Li Na" in html and "Wang Wei" in html
    assert 'data-department="security"' in html  # department totals for the office


def test_approve_and_reject_through_the_page(office, db, pending):
    response = decide(office, pending["N001"], "approve")
    assert response.status_code == 303 and response.headers["Location"].endswith("/hours/")
    assert decide(office, pending["N002"], "reject").status_code == 303
    assert (hours.get_entry(db, pending["N001"])["state"],
            hours.get_entry(db, pending["N002"])["state"]) == ("approved", "rejected")
    assert hours.get_entry(db, pending["N001"])["decided_by"] == "H001"
    assert [(who, target, detail["approve"]) for who, target, detail in
            audits(db, "hours.decision")] == [
        ("H001", f"hours:{pending['N001']}", True), ("H001", f"hours:{pending['N002']}", False)]
    html = office.get("/hours/").get_data(as_text=True)
    assert "Approved 0.5 h for N001." in html and "entry-" not in html
    totals = html[html.index('data-staff="N001"'):]
    assert '<td class="number approved">0.5</td>' in totals[:totals.index("</tr>")]


def test_a_decision_twice_or_without_a_choice_or_token_changes_nothing(office, db, pending):
    assert decide(office, pending["N001"], "approve").status_code == 303
    again = decide(office, pending["N001"], "reject")
    assert again.status_code == 409 and "already decided" in again.get_data(as_text=True)
    assert decide(office, pending["N002"], "maybe").status_code == 400
    no_token = office.post(f"/hours/{pending['N002']}/decision", data={"decision": "approve"})
    assert no_token.status_code == 400
    assert hours.get_entry(db, pending["N001"])["state"] == "approved"
    assert hours.get_entry(db, pending["N002"])["state"] == "pending"
    assert len(audits(db, "hours.decision")) == 1
    assert decide(office, 999, "approve").status_code == 404


def test_reviewer_reviews_only_their_departments_staff(reviewer, db, pending):
    html = reviewer.get("/hours/").get_data(as_text=True)
    assert f'id="entry-{pending["N001"]}"' in html
    assert f'id="entry-{pending["N002"]}"' not in html and "Wang Wei" not in html
    assert "data-department=" not in html  # no per-department totals
    assert decide(reviewer, pending["N002"], "approve").status_code == 404
    assert hours.get_entry(db, pending["N002"])["state"] == "pending"
    assert decide(reviewer, pending["N001"], "approve").status_code == 303
    assert hours.get_entry(db, pending["N001"])["decided_by"] == "R001"
