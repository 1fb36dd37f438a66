"""The portal's lighter Flask parts (edge/portal/fastflask.py) behave as
Flask's own: the session cookie is signed with the same scheme (a cookie
made by Flask's stock interface, compressed or not, still reads; a tampered
one does not), and cached URLs are the URLs Werkzeug builds."""

from flask.sessions import SecureCookieSessionInterface

from tests.test_portal import app, arp, db_path, leases  # noqa: F401 - fixtures

COOKIE = "rounds_portal"


def stock_cookie(app, session: dict) -> str:
    """A session cookie as Flask's default interface signs it."""
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps(session)


def language_seen(app, cookie: str) -> str:
    """The page's language for a client holding ``cookie`` (and no ?lang=)."""
    client = app.test_client()
    client.set_cookie(COOKIE, cookie)
    return "en" if '<html lang="en">' in client.get("/").get_data(as_text=True) else "zh"


def test_the_portals_cookie_is_plain_signed_json(app):
    client = app.test_client()
    client.get("/?lang=en")
    cookie = client.get_cookie(COOKIE).value
    ours = app.session_interface.get_signing_serializer(app)
    assert ours.loads(cookie)["lang"] == "en"
    padded = {"lang": "en", "pad": "x" * 300}  # what zlib would shorten
    assert not ours.dumps(padded).startswith(".") and stock_cookie(app, padded).startswith(".")
    assert SecureCookieSessionInterface().get_signing_serializer(app).loads(cookie)["lang"] \
        == "en"  # the stock interface reads it too


def test_cookies_signed_by_flasks_own_interface_still_read(app):
    plain = stock_cookie(app, {"lang": "en"})
    compressed = stock_cookie(app, {"lang": "en", "pad": "x" * 300})
    assert not plain.startswith(".") and compressed.startswith(".")
    assert language_seen(app, plain) == "en"
    assert language_seen(app, compressed) == "en"


def test_a_tampered_or_foreign_cookie_is_an_empty_session(app):
    good = stock_cookie(app, {"lang": "en"})
    payload, rest = good.split(".", 1)
    tampered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + rest
    assert language_seen(app, tampered) == "zh"
    app.secret_key = "another-key"  # a cookie from another node's key
    assert language_seen(app, good) == "zh"


def test_cached_urls_are_the_ones_werkzeug_builds(app):
    with app.test_request_context("/"):
        for endpoint, values in (("checkin.home", {"lang": "en"}), ("checkin.home", {"lang": "zh"}),
                                 ("me.me", {"lang": "en"}), ("static", {"filename": "portal.css"})):
            first = app.url_for(endpoint, **values)
            assert app.url_for(endpoint, **values) == first  # from the cache
            assert first == super(type(app), app).url_for(endpoint, **values)
        assert app.url_for("checkin.home", lang="en") != app.url_for("checkin.home", lang="zh")
    with app.test_request_context("/", base_url="http://127.0.0.1/portal/"):
        assert app.url_for("me.me", lang="en") == "/portal/me?lang=en"  # script root kept apart
