"""Signing in to the hub: passwords, staff PINs, throttling, tokens, sessions."""

import pytest

from hub.people import accounts
from protocol.pins import hash_pin

from .hubweb import PASSWORD, add_account, csrf_token, make_app, sign_in, signed_in


@pytest.fixture
def db(hub_db):
    with hub_db.conn:
        hub_db["staff"].insert_all([
            {"staff_id": "S001", "name": "Zhang Min", "department": "nursing",
             "pin_hash": hash_pin("246810")},
            {"staff_id": "R001", "name": "Li Lei", "department": "nursing",
             "pin_hash": hash_pin("135790")}])
    return hub_db


@pytest.fixture
def app(hub_app, db):
    return hub_app


def english(client):
    """The client with English chosen (the dashboard's default is Chinese)."""
    client.get("/lang/en")
    return client


def audit_actions(db):
    return [row[0] for row in db.conn.execute("SELECT action FROM audit_log ORDER BY id")]


def test_password_sign_in_lands_on_the_role_home_and_is_audited(app, db):
    add_account(db, "office1", "office")
    client = app.test_client()
    response = sign_in(client, "office1")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert client.get("/api/v1/events").status_code == 200
    assert audit_actions(db) == ["login"]


def test_session_cookie_is_httponly_and_samesite(hub_location, tmp_path, db):
    add_account(db, "office1", "office")
    app = make_app(hub_location, PHOTOS_DIR=str(tmp_path))
    app.testing = False  # cookie flags as in production
    app.config["SESSION_COOKIE_SECURE"] = True
    response = sign_in(app.test_client(), "office1")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_wrong_password_and_unknown_user_get_the_same_answer(app, db):
    add_account(db, "office1", "office")
    wrong = sign_in(english(app.test_client()), "office1", "not the password")
    unknown = sign_in(english(app.test_client()), "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Unknown username or wrong password" in wrong.get_data(as_text=True)
    assert "Unknown username or wrong password" in unknown.get_data(as_text=True)


def test_sign_in_is_throttled_after_five_failures(app, db):
    add_account(db, "office1", "office")
    client = app.test_client()
    for _ in range(accounts.LOGIN_MAX_FAILURES):
        assert sign_in(client, "office1", "guess-guess-guess").status_code == 401
    # Even the right password is refused now, for this username only.
    assert sign_in(client, "office1").status_code == 429
    add_account(db, "office2", "office")
    assert sign_in(app.test_client(), "office2").status_code == 303


def test_staff_sign_in_with_their_portal_pin_and_see_only_staff_things(app, db):
    client = app.test_client()
    assert sign_in(client, "S001", "246810").status_code == 303
    assert client.get("/api/v1/tickets").status_code == 403
    assert sign_in(app.test_client(), "S001", "000000").status_code == 401


def test_a_pin_never_grants_the_role_of_an_account_with_the_same_name(app, db):
    # R001 is a reviewer whose account has no password yet: the PIN signs in
    # as staff, not as the reviewer.
    with db.conn:
        accounts.create(db, "R001", "dept_reviewer", None, department="nursing")
    client = app.test_client()
    assert sign_in(client, "R001", "135790").status_code == 303
    assert client.get("/api/v1/tickets").status_code == 403
    # Once a password is set, the PIN no longer signs in at all.
    with db.conn:
        accounts.set_password(db, "R001", PASSWORD)
    assert sign_in(app.test_client(), "R001", "135790").status_code == 401
    reviewer = app.test_client()
    assert sign_in(reviewer, "R001").status_code == 303
    assert reviewer.get("/api/v1/tickets").status_code == 200


def test_disabling_an_account_ends_its_session(app, db):
    client = signed_in(app, db, "office", username="office1")
    assert client.get("/api/v1/events").status_code == 200
    with db.conn:
        accounts.set_role(db, "office1", "office", disabled=True)
    assert client.get("/api/v1/events").status_code == 401
    assert sign_in(app.test_client(), "office1").status_code == 401


def test_bearer_token_works_without_cookies_and_a_bad_one_is_401(app, db):
    add_account(db, "script", "office")
    with db.conn:
        token = accounts.issue_token(db, "script", "nightly export")
    client = app.test_client()
    good = client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert good.status_code == 200
    assert client.get("/api/v1/events", headers={"Authorization": "Bearer rnd_nope"}
                      ).status_code == 401
    stored = db.conn.execute("SELECT token_hash FROM api_tokens").fetchone()[0]
    assert token not in stored  # only a hash is kept


def test_a_bearer_header_never_rides_on_a_session_cookie(app, db):
    client = signed_in(app, db, "admin")
    # With a bogus token the session's admin is not used.
    response = client.get("/api/v1/events", headers={"Authorization": "Bearer rnd_nope"})
    assert response.status_code == 401


def test_next_only_follows_paths_on_this_site(app, db):
    add_account(db, "office1", "office")
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        client = app.test_client()
        token = csrf_token(client)
        response = client.post(f"/login?next={target}", data={
            "username": "office1", "password": PASSWORD, "csrf_token": token})
        assert response.headers["Location"] == "/", target


def test_sign_out_needs_a_post_with_the_token(app, db):
    client = signed_in(app, db, "office")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/api/v1/events").status_code == 200
    assert client.post("/logout", data={"csrf_token": client.csrf}).status_code == 303
    assert client.get("/api/v1/events").status_code == 401


def test_language_is_chinese_by_default_and_switchable(app, db):
    client = app.test_client()
    assert '<html lang="zh-CN">' in client.get("/login").get_data(as_text=True)
    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 303 and switched.headers["Location"] == "/login"
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)
    # An off-site next is not followed.
    assert client.get("/lang/zh?next=//evil.example").headers["Location"] == "/login"
