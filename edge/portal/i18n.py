"""Simplified Chinese by default, English on request (Flask-Babel).

A person picks the language with the link on every page (``?lang=en`` /
``?lang=zh`` on any URL). The choice is remembered in the portal's session
cookie (the same cookie that carries the CSRF token, so every POST that passes
the CSRF check also knows the language) and carried in every link and
redirect the portal makes, because captive mini-browsers can lose cookies
between one sheet and the next. The phone's Accept-Language is not consulted:
this hospital's portal speaks Chinese unless a person asks otherwise.

Messages are written in English in the code and templates (``_()``); the
Chinese catalogue is ``translations/zh_Hans_CN/LC_MESSAGES/messages.po``, and
its compiled ``messages.mo`` is committed beside it (tests check that the two
agree and that every message is translated). After changing a message::

    .venv/bin/pybabel extract -F babel.cfg --no-location -o /tmp/messages.pot .
    .venv/bin/pybabel update -i /tmp/messages.pot -d edge/portal/translations -N \
        --ignore-obsolete -w 100
    (translate the new entries in the .po, remove any "fuzzy" flags)
    .venv/bin/pybabel compile -d edge/portal/translations
"""

from datetime import timedelta

from flask import Flask, g, redirect, request, session, url_for
from flask_babel import Babel, get_translations
from jinja2 import pass_eval_context
from markupsafe import Markup

LOCALES = {"zh": "zh_Hans_CN", "en": "en"}
HTML_LANG = {"zh": "zh-CN", "en": "en"}
NAMES = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
_SESSION_KEY = "lang"


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", LOCALES[DEFAULT])
    # The session cookie is made permanent only when a language is chosen.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=app.config["LANGUAGE_COOKIE_DAYS"])
    Babel(app, locale_selector=lambda: LOCALES[lang()])
    # Flask-Babel's template callables look the catalogue up through three
    # context lookups on every call (~25 calls a page), and Jinja's newstyle
    # wrappers add two more calls each: the page's ``_()`` and ``gettext()``
    # are one call that looks the catalogue up once a request.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _catalogue().ugettext(s),
        ngettext=lambda s, p, n: _catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: _catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalogue().unpgettext(c, s, p, n),
        newstyle=True)
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext)
    app.before_request(_remember)
    app.jinja_env.globals.update(lurl=lurl, lang=lang, html_lang=lambda: HTML_LANG[lang()],
                                 switch=switch)


def parse(value) -> str | None:
    """``zh``, ``zh-CN``, ``zh_Hans_CN`` -> ``zh``; ``en``, ``en-US`` -> ``en``."""
    value = (value or "").strip().lower()
    for code in LOCALES:
        if value == code or value.startswith(code + "-") or value.startswith(code + "_"):
            return code
    return None


def lang() -> str:
    """This request's language: ``?lang=``, else the cookie, else Chinese."""
    found = g.get("lang")
    if found is None:
        found = g.lang = (parse(request.args.get("lang")) or parse(session.get(_SESSION_KEY))
                          or DEFAULT)
    return found


@pass_eval_context
def _template_gettext(eval_ctx, string: str, **variables) -> str:
    """Jinja's newstyle ``gettext`` in one call: the message in this request's
    language, escaped-safe in an autoescaped template, always %-formatted
    (so ``%%`` means ``%`` with or without variables, as Jinja's does)."""
    message = _catalogue().ugettext(string)
    if eval_ctx.autoescape:
        message = Markup(message)
    return message % variables


def _catalogue():
    """This request's translations (Flask-Babel's, fetched once)."""
    catalogue = g.get("catalogue")
    if catalogue is None:
        catalogue = g.catalogue = get_translations()
    return catalogue


def _remember() -> None:
    chosen = parse(request.args.get("lang"))
    if chosen and session.get(_SESSION_KEY) != chosen:
        session[_SESSION_KEY] = chosen
        session.permanent = True  # outlives the browser session


def lurl(endpoint: str, **values) -> str:
    """``url_for`` that carries the language along."""
    return url_for(endpoint, lang=lang(), **values)


def switch() -> dict:
    """The link to this page in the other language (the start page after a POST)."""
    other = "en" if lang() == "zh" else "zh"
    if request.method == "GET" and request.endpoint and request.endpoint != "static":
        href = url_for(request.endpoint, **(request.view_args or {}), lang=other)
    else:
        href = url_for("checkin.home", lang=other)
    return {"href": href, "label": NAMES[other], "lang": HTML_LANG[other]}


def redirect_to(endpoint: str, **values):
    """A 303 to a portal page, with the language in the URL."""
    return redirect(lurl(endpoint, **values), code=303)

