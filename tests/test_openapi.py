"""The OpenAPI document at /api/v1/openapi.json describes every /api/v1 route,
and real answers match it.

Every test that builds the app with tests/hubweb.py ``make_app`` checks each
/api/v1 response it gets against the document (tests/openapi_check.py); here
the document is checked whole, and every GET route is walked once as the
roles that may use it, on a small hospital (tests/hubworld.py)."""

import pytest
from jsonschema import Draft202012Validator


from .hubweb import signed_in
from .hubworld import world
from .openapi_check import PREFIX, openapi_path
from .test_roles import example_url

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def setup(hub_db, hub_app, tmp_path):
    return hub_app, hub_db, world(hub_db, tmp_path)


def api_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(PREFIX)]


def test_the_document_is_served_and_is_openapi_3_1(setup):
    app, _, _ = setup
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    # Every schema is itself a valid JSON Schema (2020-12, as OpenAPI 3.1 uses).
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def test_every_api_route_is_documented_and_every_documented_route_exists(setup):
    app, _, _ = setup
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    routes = {(openapi_path(rule.rule), method.lower())
              for rule in api_rules(app) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method in METHODS}
    assert sorted(routes - documented) == [], "routes missing from the OpenAPI document"
    assert sorted(documented - routes) == [], "documented operations with no route"


def test_every_operation_documents_its_answers_with_schemas(setup):
    app, _, _ = setup
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            for code, answer in op["responses"].items():
                for mimetype, body in answer.get("content", {}).items():
                    assert "schema" in body, (method, path, code, mimetype)


@pytest.mark.parametrize("role", ["admin", "dept_reviewer", "staff"])
def test_every_get_route_answers_as_documented(setup, role):
    """Each GET route the role may use answers 2xx, checked against the
    document by the app's after-request hook."""
    app, db, examples = setup
    client = signed_in(app, db, role)
    answered = []
    for rule in api_rules(app):
        if "GET" not in rule.methods:
            continue
        response = client.get(example_url(rule, examples))
        if response.status_code == 403:
            continue  # not this role's (tests/test_roles.py checks who may)
        assert response.status_code == 200, (rule.rule, response.get_data(as_text=True)[:300])
        answered.append(rule.rule)
    assert answered, role
    if role == "admin":
        # Admin may use everything but /me... (no staff record): all else answered.
        gets = [r.rule for r in api_rules(app) if "GET" in r.methods
                and not (r.rule == "/api/v1/me" or r.rule.startswith("/api/v1/me/"))]
        assert set(gets) <= set(answered), sorted(set(gets) - set(answered))
