"""The dashboard in Simplified Chinese by default, English on request (Flask-Babel).

The language is a choice kept in the session cookie (``/lang/en``,
``/lang/zh``, or ``?lang=`` on any URL); the browser's Accept-Language is not
consulted, as on the portal. Messages are English in code and templates; the
Chinese catalogue is ``translations/zh_Hans_CN/LC_MESSAGES/messages.po`` with
its compiled ``.mo`` committed beside it. Messages are marked with ``_()`` /
``gettext`` (translated now), ``_l()`` / ``lazy_gettext`` (module-level labels,
translated when shown) and ``N_()`` (a no-op in the domain modules such as
hub/people/roster.py, hub/schedule/events.py, hub/schedule/zones.py and
hub/attendance/exports.py, translated where the message is shown); the extraction needs all of these keywords (``KEYWORDS``
below, which tests/test_hub_i18n.py uses too: it fails if a message is missing
from the catalogue, untranslated, fuzzy or has other placeholders than its
English). After changing messages::

    .venv/bin/pybabel extract -F hub/web/babel.cfg --no-location -k _l -k lazy_gettext \\
        -k N_ -w 100 -o /tmp/hub.pot .
    .venv/bin/pybabel update -i /tmp/hub.pot -d hub/web/translations -N \\
        --ignore-obsolete -w 100
    (translate the new entries, remove "fuzzy" flags)
    .venv/bin/pybabel compile -d hub/web/translations

Terms used in the catalogue: 工单 ticket, 志愿时长 volunteer hours, 学时 credit
hours, 热点 hotspot, 考勤 attendance, 在场 / 部分在场 / 缺席, 签到 check-in,
迟到 / 早退, 科室 department, 科室审核人 department reviewer, 文明办 civility
office, 名册 roster, 区域 zone, 平面图 floor plan, 节点 node, 工号 staff number,
PIN 码 PIN, 导出 export.
"""

from pathlib import Path

from flask import Blueprint, Flask, g, redirect, request, session, url_for
from flask_babel import Babel

from hub.web.params import safe_next

LOCALES = {"zh": "zh_Hans_CN", "en": "en"}
HTML_LANG = {"zh": "zh-CN", "en": "en"}
NAMES = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
# pybabel keywords beyond its defaults (which include _, gettext, ngettext and N_)
KEYWORDS = ("_l", "lazy_gettext", "N_")

bp = Blueprint("i18n", __name__)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", LOCALES[DEFAULT])
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    Babel(app, locale_selector=lambda: LOCALES[lang()])
    app.before_request(_remember)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(lang=lang, html_lang=lambda: HTML_LANG[lang()],
                                 other_lang=other_lang)


def parse(value) -> str | None:
    """``zh``, ``zh-CN``, ``zh_Hans_CN`` -> ``zh``; ``en``, ``en-US`` -> ``en``."""
    value = (value or "").strip().lower()
    for code in LOCALES:
        if value == code or value.startswith(code + "-") or value.startswith(code + "_"):
            return code
    return None


def lang() -> str:
    if "lang" not in g:
        g.lang = parse(request.args.get("lang")) or parse(session.get("lang")) or DEFAULT
    return g.lang


def _remember() -> None:
    chosen = parse(request.args.get("lang"))
    if chosen and session.get("lang") != chosen:
        session["lang"] = chosen


def other_lang() -> dict:
    other = "en" if lang() == "zh" else "zh"
    return {"href": url_for("i18n.switch", code=other, next=request.full_path),
            "label": NAMES[other], "lang": HTML_LANG[other]}


@bp.get("/lang/<code>")
def switch(code):
    """Remember the language and go back to the page it was chosen on."""
    chosen = parse(code) or DEFAULT
    session["lang"] = chosen
    g.lang = chosen
    return redirect(safe_next(request.args.get("next")) or url_for("auth.login"), code=303)
