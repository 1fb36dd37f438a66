"""Accounts: the admin-only pages and API, the office setting a roster
account's password, and ``rounds-hub user``, against a real SQLite file."""

import json

import pytest
from click.testing import CliRunner

from hub.cli.main import main as hub_main
from hub.people import account_admin, roster

from .conftest import hub_db_settings
from .hubweb import PASSWORD, post_json, sign_in, signed_in

NEW_PASSWORD = "a much longer secret"


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        roster.add_department(hub_db, "icu", "重症医学科")
    return hub_db


@pytest.fixture
def app(hub_app, db):
    return hub_app


@pytest.fixture
def admin(app, db):
    """An admin reading the pages in English (the default is Chinese)."""
    return signed_in(app, db, "admin", lang="en")


def audit_rows(db, action: str) -> list[tuple]:
    return db.conn.execute("SELECT who, target, detail FROM audit_log WHERE action = ? "
                           "ORDER BY id", (action,)).fetchall()


def can_sign_in(app, username: str, password: str) -> bool:
    return sign_in(app.test_client(), username, password).status_code == 303


def test_accounts_are_for_admins_only_and_never_show_hashes(app, db, admin):
    office = signed_in(app, db, "office")

    assert office.get("/accounts/").status_code == 403
    assert office.get("/api/v1/accounts").status_code == 403
    assert post_json(office, "/api/v1/accounts", {"username": "x", "role": "admin",
                                                  "password": NEW_PASSWORD}).status_code == 403
    assert app.test_client().get("/api/v1/accounts").status_code == 401
    page = admin.get("/accounts/")
    listing = admin.get("/api/v1/accounts")
    assert page.status_code == 200 and listing.status_code == 200
    assert {a["username"]: a["password_set"] for a in listing.get_json()} == {
        "admin-user": True, "office-user": True}
    one = admin.get("/accounts/office-user")
    assert one.status_code == 200 and "A password is set." in one.get_data(as_text=True)
    assert office.get("/accounts/office-user").status_code == 403
    for text in (page.get_data(as_text=True), listing.get_data(as_text=True),
                 one.get_data(as_text=True)):
        assert "scrypt" not in text and "password_hash" not in text


def test_admin_creates_an_account_on_the_page_and_it_signs_in(app, db, admin):
    short = admin.post("/accounts/", data={"csrf_token": admin.csrf, "username": "wang.li",
                                           "role": "dept_reviewer", "department": "icu",
                                           "password": "short"})
    assert short.status_code == 400
    assert 'value="wang.li"' in short.get_data(as_text=True)  # what was typed is kept
    assert account_admin.get_account(db, "wang.li") is None

    created = admin.post("/accounts/", data={"csrf_token": admin.csrf, "username": "wang.li",
                                             "role": "dept_reviewer", "department": "icu",
                                             "password": NEW_PASSWORD})

    assert created.status_code == 303
    account = account_admin.get_account(db, "wang.li")
    assert (account["role"], account["department"], account["password_set"]) == (
        "dept_reviewer", "icu", True)
    assert can_sign_in(app, "wang.li", NEW_PASSWORD)
    (who, target, detail), = audit_rows(db, "account.create")
    assert (who, target) == ("admin-user", "account:wang.li")
    assert NEW_PASSWORD not in detail


def test_account_api_validates_and_refuses_duplicates(admin, db):
    good = post_json(admin, "/api/v1/accounts", {"username": "ops", "role": "office",
                                                 "password": NEW_PASSWORD})
    twice = post_json(admin, "/api/v1/accounts", {"username": "ops", "role": "office",
                                                  "password": NEW_PASSWORD})
    no_department = post_json(admin, "/api/v1/accounts", {"username": "rev",
                                                          "role": "dept_reviewer"})
    unknown = post_json(admin, "/api/v1/accounts", {"username": "rev", "role": "dept_reviewer",
                                                    "department": "nowhere"})
    bad_role = post_json(admin, "/api/v1/accounts", {"username": "rev", "role": "boss"})

    assert good.status_code == 201
    assert good.get_json()["username"] == "ops" and "password" not in good.get_json()
    assert twice.status_code == 409
    assert [r.status_code for r in (no_department, unknown, bad_role)] == [400, 400, 400]
    assert account_admin.get_account(db, "rev") is None
    assert [who for who, _t, _d in audit_rows(db, "account.create")] == ["admin-user"]


def test_admin_changes_role_disables_and_sets_passwords(app, db, admin):
    signed_in(app, db, "office", username="zhou")

    demoted = admin.post("/accounts/zhou/role", data={
        "csrf_token": admin.csrf, "role": "dept_reviewer", "department": "icu"})
    assert demoted.status_code == 303
    assert account_admin.get_account(db, "zhou")["role"] == "dept_reviewer"

    new_password = admin.post("/accounts/zhou/password", data={
        "csrf_token": admin.csrf, "password": NEW_PASSWORD})
    assert new_password.status_code == 303
    assert can_sign_in(app, "zhou", NEW_PASSWORD) and not can_sign_in(app, "zhou", PASSWORD)

    disabled = admin.post("/accounts/zhou/role", data={
        "csrf_token": admin.csrf, "role": "dept_reviewer", "department": "icu",
        "disabled": "1"})
    assert disabled.status_code == 303
    assert not can_sign_in(app, "zhou", NEW_PASSWORD)
    assert [(who, target) for who, target, _d in audit_rows(db, "account.change")] == [
        ("admin-user", "account:zhou")] * 2
    assert audit_rows(db, "account.password") == [("admin-user", "account:zhou", "{}")]


def test_the_last_admin_cannot_be_demoted_or_disabled(admin, db):
    response = admin.post("/accounts/admin-user/role", data={
        "csrf_token": admin.csrf, "role": "office"})

    assert response.status_code == 409
    assert "last enabled admin" in response.get_data(as_text=True)
    assert account_admin.get_account(db, "admin-user")["role"] == "admin"
    assert admin.get("/accounts/nobody").status_code == 404


def test_office_sets_a_roster_accounts_password_but_not_an_admins(app, db):
    db.conn.execute("INSERT INTO staff (staff_id, name, department, role) "
                    "VALUES ('1001', 'Li Na', 'icu', 'office'), "
                    "('1002', 'Zhang Wei', 'icu', 'admin')")
    with db.conn:
        account_admin.create_account(db, "1001", "office", None, department="icu",
                                     staff_id="1001")
        account_admin.create_account(db, "1002", "admin", None, staff_id="1002")
    office = signed_in(app, db, "office")

    assert not can_sign_in(app, "1001", NEW_PASSWORD)
    response = office.post("/staff/1001/password", data={"csrf_token": office.csrf,
                                                         "password": NEW_PASSWORD})
    refused = office.post("/staff/1002/password", data={"csrf_token": office.csrf,
                                                        "password": NEW_PASSWORD})

    assert response.status_code == 303 and refused.status_code == 403
    assert can_sign_in(app, "1001", NEW_PASSWORD) and not can_sign_in(app, "1002", NEW_PASSWORD)
    assert audit_rows(db, "account.password") == [("office-user", "account:1001", "{}")]


# --- rounds-hub user ---------------------------------------------------------------


@pytest.fixture
def config(tmp_path, hub_location, db):
    path = tmp_path / "hub.json"
    path.write_text(json.dumps({"site": "general-hospital",
                                **hub_db_settings(hub_location, tmp_path)}))
    return path


def run(config, *args, **kwargs):
    return CliRunner().invoke(hub_main, ["--config", str(config), *args], **kwargs)


def test_cli_user_add_passwd_list_and_token(app, config, db):
    added = run(config, "user", "add", "ops", "--role", "office",
                input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert can_sign_in(app, "ops", NEW_PASSWORD)

    mismatch = run(config, "user", "passwd", "ops", input="first-password\nsecond-password\n"
                   "first-password\nfirst-password\n")
    assert mismatch.exit_code == 0 and "do not match" in mismatch.output
    assert can_sign_in(app, "ops", "first-password")

    piped = run(config, "user", "add", "rev", "--role", "dept_reviewer", "--department",
                "icu", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert piped.exit_code == 0, piped.output
    listed = run(config, "user", "list")
    assert "rev\tdept_reviewer\ticu\t-\tactive" in listed.output.splitlines()

    token = run(config, "user", "token", "ops", "--name", "nightly export")
    assert token.exit_code == 0
    bearer = {"Authorization": f"Bearer {token.output.strip()}"}
    assert app.test_client().get("/api/v1/staff", headers=bearer).status_code == 200
    who = {row[0] for row in db.conn.execute(
        "SELECT who FROM audit_log WHERE action IN ('account.create', 'account.password', "
        "'account.token')")}
    assert len(who) == 1 and who.pop().startswith("cli:")
    assert token.output.strip() not in json.dumps(
        db.conn.execute("SELECT * FROM audit_log").fetchall())


def test_cli_user_errors_are_clear(config, db):
    short = run(config, "user", "add", "ops", "--role", "office", "--password-stdin",
                input="short\n")
    unknown = run(config, "user", "passwd", "nobody", "--password-stdin",
                  input=NEW_PASSWORD + "\n")
    no_token = run(config, "user", "token", "nobody", "--name", "x")

    assert short.exit_code == 1 and "at least 10 characters" in short.output
    assert unknown.exit_code == 1 and "no account nobody" in unknown.output
    assert no_token.exit_code == 1 and "no account" in no_token.output
    assert account_admin.get_account(db, "ops") is None


def test_cli_adds_a_branch_reviewer_with_the_branch(config, db):
    missing = run(config, "user", "add", "zhao", "--role", "branch_reviewer",
                  "--password-stdin", input=NEW_PASSWORD + "\n")
    added = run(config, "user", "add", "zhao", "--role", "branch_reviewer", "--branch",
                "Surgery branch", "--password-stdin", input=NEW_PASSWORD + "\n")

    assert missing.exit_code == 1 and "needs a party branch" in missing.output
    assert added.exit_code == 0, added.output
    assert account_admin.get_account(db, "zhao")["branch"] == "Surgery branch"
    (detail,) = db.conn.execute("SELECT detail FROM audit_log WHERE action = 'account.create' "
                                "AND target = 'account:zhao'").fetchone()
    assert json.loads(detail)["branch"] == "Surgery branch"
