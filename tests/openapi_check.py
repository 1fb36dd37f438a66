"""Every /api/v1 response a test sees is checked against the OpenAPI document.

``install(app)`` adds an ``after_request`` hook to a test app: a response on
an /api/v1 route whose status, content type or JSON body the document does not
describe raises AssertionError, which the test client propagates into the test
that made the request. So every test that touches the API also tests the
document, and ``test_openapi.py`` walks the routes no other test reaches.
"""

import re

from flask import request
from jsonschema import Draft202012Validator

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
PREFIX = "/api/v1"


def openapi_path(rule: str) -> str:
    """``/api/v1/tickets/<int:ticket_id>`` -> ``/api/v1/tickets/{ticket_id}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def operation(document: dict, rule: str, method: str) -> dict:
    item = document["paths"].get(openapi_path(rule))
    assert item is not None, f"{rule} is not in the OpenAPI document"
    op = item.get(method.lower())
    assert op is not None, f"{method} {rule} is not in the OpenAPI document"
    return op


def check(document: dict, rule: str, method: str, response) -> None:
    op = operation(document, rule, method)
    status = str(response.status_code)
    documented = op["responses"].get(status) or op["responses"].get("default")
    assert documented is not None, (
        f"{method} {rule} answered {status}, which the OpenAPI document does not list "
        f"(it lists {sorted(op['responses'])})")
    content = documented.get("content")
    if not content:
        return
    mimetype = response.mimetype
    assert mimetype in content, (
        f"{method} {rule} {status} answered {mimetype}; documented: {sorted(content)}")
    schema = content[mimetype].get("schema")
    if mimetype != "application/json" or not schema:
        return
    rooted = {**schema, "components": document["components"]}
    errors = sorted(Draft202012Validator(rooted).iter_errors(response.get_json()),
                    key=lambda e: list(e.absolute_path))
    assert not errors, (f"{method} {rule} {status} does not match its schema: "
                        + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]))


def install(app) -> None:
    from hub.web.openapi import document

    cache = {}

    @app.after_request
    def _check(response):
        rule = request.url_rule
        if rule is None or not rule.rule.startswith(PREFIX) or request.method == "HEAD":
            return response
        if "doc" not in cache:
            cache["doc"] = document()
        check(cache["doc"], rule.rule, request.method, response)
        return response
