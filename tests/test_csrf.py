"""CSRF: every POST route of the dashboard and the API refuses a request from a
signed-in browser session that carries no CSRF token, and changes nothing."""

import pytest


from .hubweb import signed_in
from .hubworld import world
from .pgtables import table_names
from .test_roles import example_url

# Routes that need no CSRF token, and why.
EXEMPT = {
    "open311.": "Open311 writes authenticate with api_key, never with the session cookie",
}


@pytest.fixture
def setup(hub_db, hub_app, tmp_path):
    examples = world(hub_db, tmp_path)
    return hub_app, hub_db, signed_in(hub_app, hub_db, "admin"), examples


def _post_rules(app):
    return [rule for rule in app.url_map.iter_rules()
            if "POST" in rule.methods
            and not any(rule.endpoint.startswith(prefix) for prefix in EXEMPT)]


def _snapshot(db) -> dict:
    tables = [name for name in table_names(db) if name != "login_failures"]
    return {table: db.conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
            for table in tables}


def test_there_are_post_routes_to_check(setup):
    app, *_ = setup
    assert len(_post_rules(app)) >= 3


def test_every_post_without_a_token_is_refused_and_changes_nothing(setup):
    app, db, client, examples = setup
    before = _snapshot(db)
    refused = []
    for rule in _post_rules(app):
        url = example_url(rule, examples)
        for kwargs in ({"data": {"to": "closed", "approve": "1"}},
                       {"json": {"to": "closed", "approve": True}}):
            response = client.post(url, **kwargs)
            assert response.status_code == 400, (rule.rule, response.status_code)
            assert "CSRF" in response.get_data(as_text=True), rule.rule
            refused.append(rule.rule)
    assert _snapshot(db) == before
    # Still signed in: the refusals did not end the session, a GET still works.
    assert client.get("/api/v1/tickets").status_code == 200
    assert len(refused) == 2 * len(_post_rules(app))


def test_a_token_from_another_session_is_refused(setup):
    app, db, client, examples = setup
    other = signed_in(app, db, "office")
    rule = next(r for r in _post_rules(app) if r.endpoint == "tickets_api.ticket_transition")
    url = example_url(rule, examples)
    response = client.post(url, json={"to": "in_progress"}, headers={"X-CSRFToken": other.csrf})
    assert response.status_code == 400
    assert client.post(url, json={"to": "in_progress"},
                       headers={"X-CSRFToken": client.csrf}).status_code == 200
