"""Helpers for tests of the hub's web app: accounts per role, signing in
through the real login form, and the CSRF token the pages carry. The hub's
database and app for one test are the ``hub_db`` and ``hub_app`` fixtures
(tests/conftest.py)."""

import re
from contextlib import contextmanager

from hub.db import open_db
from hub.people import accounts
from hub.sql import is_dsn
from hub.web import create_app

from .openapi_check import install

PASSWORD = "correct horse battery"
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def make_app(db_path, **config):
    """The hub app on ``db_path``; every /api/v1 response it gives is checked
    against the OpenAPI document (tests/openapi_check.py)."""
    if is_dsn(db_path):  # no file beside which to keep a session key
        config.setdefault("SECRET_KEY", "test-hub-secret")
    app = create_app({"TESTING": True, "HUB_DB": str(db_path), "SITE": "general-hospital",
                      **config})
    install(app)
    return app


def add_account(db, username: str, role: str, *, department: str | None = None,
                staff_id: str | None = None, campus: str | None = None,
                password: str = PASSWORD) -> None:
    with db.conn:
        accounts.create(db, username, role, password, department=department,
                        staff_id=staff_id, campus=campus)


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = _META.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


def signed_in(app, db, role: str = "office", *, lang: str | None = None, **account):
    """A test client signed in as a new account with ``role``; with ``lang``
    ("en"), reading the pages in that language (the default is Chinese)."""
    username = account.pop("username", f"{role}-user")
    if role == "dept_reviewer":
        account.setdefault("department", "environmental_services")
    if role == "staff":
        account.setdefault("staff_id", "S001")
    add_account(db, username, role, **account)
    client = app.test_client()
    response = sign_in(client, username)
    assert response.status_code == 303, response.get_data(as_text=True)
    client.csrf = csrf_token(client, "/login")
    if lang:
        client.get(f"/lang/{lang}")
    return client


def post_json(client, path: str, body: dict):
    """A JSON POST from a signed-in browser session (CSRF token in the header)."""
    return client.post(path, json=body, headers={"X-CSRFToken": client.csrf})


@contextmanager
def office_session(directory, seed=None):
    """``(db, client)``: a new hub database in ``directory`` (``seed(db)`` run
    on it) and the office signed in to an app on it, reading English; for
    module-scoped fixtures (``hub_db`` and ``hub_app`` are one test's)."""
    path = directory / "hub.db"
    database = open_db(path)
    try:
        if seed:
            seed(database)
        yield database, signed_in(make_app(path), database, "office", lang="en")
    finally:
        database.close()
