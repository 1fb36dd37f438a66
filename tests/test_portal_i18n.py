"""The portal speaks Simplified Chinese by default and English on request;
the choice sticks (cookie) and travels in every link (captive mini-browsers
can lose cookies). The committed catalogue is complete and compiled."""

import io
import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from .test_portal import (  # noqa: F401 - fixtures
    PHONE_IP, PHONE_MAC, arp, csrf, db_path, lease, leases, text,
)
from .test_portal import app as app  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "edge/portal/translations/zh_Hans_CN/LC_MESSAGES"
CSS = ROOT / "edge/portal/static/portal.css"


def fresh(app, ip="127.0.0.1"):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


@pytest.fixture
def phone_ip(leases):
    lease(leases, PHONE_IP, PHONE_MAC)
    return PHONE_IP


def internal_links(response) -> list[str]:
    """The page's links to portal pages, but the language switch."""
    page = response.get_data(as_text=True)
    return [href for href in re.findall(r'<a (?![^>]*class="lang")[^>]*href="([^"]+)"', page)
            if href.startswith("/")]


def test_default_is_simplified_chinese(app):
    response = fresh(app).get("/")
    page = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "签到" in page and "工号" in page and "密码" in page
    assert "Staff number" not in page and "Check in" not in page
    assert re.search(r'<a class="lang" href="/\?lang=en"[^>]*>English</a>', page)


def test_default_ignores_the_phones_english_accept_language(app):
    page = fresh(app).get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "签到" in page.get_data(as_text=True)


def test_unbound_phone_sees_the_bind_form_in_chinese(app, phone_ip):
    page = text(fresh(app, phone_ip).get("/"))
    assert "绑定本机" in page and "绑定本机并签到" in page


def test_lang_en_gives_english(app):
    response = fresh(app).get("/?lang=en")
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Staff number" in page and "Check in" in page and "工号" not in page
    assert re.search(r'<a class="lang" href="/\?lang=zh"[^>]*>中文</a>', page)


def test_choice_sticks_in_the_cookie(app):
    client = fresh(app)
    cookie = client.get("/?lang=en").headers["Set-Cookie"]
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert expires - datetime.now(timezone.utc) > timedelta(days=179)  # outlives the sheet
    assert "Staff number" in text(client.get("/"))
    assert "Page not found" in text(client.get("/nope"))
    client.get("/?lang=zh")
    assert "工号" in text(client.get("/"))


def test_choice_travels_in_links_without_the_cookie(app, phone_ip, db_path):
    """A mini-browser that lost the cookie still follows links in English."""
    client = fresh(app, phone_ip)
    links = internal_links(client.get("/?lang=en"))
    assert links and all(re.search(r"[?&]lang=en\b", href) for href in links), links
    cookieless = fresh(app, phone_ip)
    assert "Bind this phone" in text(cookieless.get(links[0]))


def test_redirect_after_post_carries_the_language(app, phone_ip, db_path):
    client = fresh(app, phone_ip)
    client.get("/?lang=en")
    response = client.post("/bind", data={"csrf_token": csrf(client), "staff_id": "D001",
                                          "pin": "2468"})
    assert response.status_code == 303 and response.headers["Location"] == "/bound?lang=en"
    for path in ("/bound?lang=en", "/?lang=en", "/me?lang=en"):
        links = internal_links(client.get(path))
        assert all("lang=en" in href for href in links), (path, links)


def test_bound_and_record_pages_in_chinese(app, phone_ip):
    client = fresh(app, phone_ip)
    client.post("/bind", data={"csrf_token": csrf(client), "staff_id": "D001", "pin": "2468"})
    bound = text(client.get("/bound"))
    assert "本机已绑定到 Dr. Li（工号 D001）" in bound
    assert "即使手机提示“无法上网”，也请保持连接此 Wi-Fi" in bound
    assert "Dr. Li，您好" in text(client.get("/"))
    assert "我的记录" in text(client.get("/me"))


def test_messages_from_code_are_translated(app):
    client = fresh(app)
    response = client.post("/checkin", data={"csrf_token": csrf(client), "staff_id": "D001",
                                             "pin": "0000"})
    assert response.status_code == 401
    assert "工号 D001 的密码错误。再输错 4 次，该工号将被锁定 15 分钟。" in text(response)
    assert "请重试" in text(client.post("/checkin", data={"staff_id": "D001", "pin": "1"}))


def test_switch_link_after_a_post_goes_to_the_start_page(app):
    client = fresh(app)
    response = client.post("/checkin", data={"csrf_token": csrf(client), "staff_id": "",
                                             "pin": ""})
    assert re.search(r'<a class="lang" href="/\?lang=en"', response.get_data(as_text=True))


# --- the catalogue ------------------------------------------------------------

def _messages(catalog) -> dict:
    """(context, id) -> translation; plural ids and strings as tuples."""
    def frozen(value):
        return value if isinstance(value, str) else tuple(value)
    return {(m.context, frozen(m.id)): frozen(m.string) for m in catalog if m.id}


def test_committed_mo_is_the_compiled_po():
    """``pybabel compile`` of the committed .po gives the committed .mo: the
    same messages and translations (compared as messages, not bytes, since
    Babel releases lay the file out differently)."""
    with open(CATALOG / "messages.po", "rb") as f:
        catalog = read_po(f, locale="zh_Hans_CN")
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    fresh = _messages(read_mo(compiled))
    with open(CATALOG / "messages.mo", "rb") as f:
        committed = _messages(read_mo(f))
    assert len(committed) > 50
    assert committed == fresh, (
        "messages.mo is stale: run .venv/bin/pybabel compile -d edge/portal/translations")


def test_every_message_is_translated():
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    used = {message[2] if isinstance(message[2], str) else message[2][0]
            for message in extract_from_dir(ROOT, method_map, options_map)}
    used.discard("")
    assert len(used) > 50  # the extraction found the portal's messages at all
    with open(CATALOG / "messages.po", "rb") as f:
        catalog = read_po(f, locale="zh_Hans_CN")
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings) and not message.fuzzy, key
        translated[key] = strings
    assert sorted(used - set(translated)) == [], "untranslated: update the .po (see i18n.py)"
    assert sorted(set(translated) - used) == [], "obsolete entries in the .po"
    problems = [(m.id, errors) for m, errors in catalog.check() if errors]
    assert problems == []  # placeholders in each translation match the English


# --- small pages ---------------------------------------------------------------

def test_every_page_is_small_and_without_script(app, phone_ip, db_path):
    css = CSS.stat().st_size
    client = fresh(app, phone_ip)
    pages = [client.get("/"), client.get("/nope")]
    client.post("/bind", data={"csrf_token": csrf(client), "staff_id": "D001", "pin": "2468"})
    pages += [client.get("/bound"), client.get("/me"), client.get("/bind"), client.get("/")]
    unknown = fresh(app)
    unknown.post("/checkin", data={"csrf_token": csrf(unknown), "staff_id": "D001",
                                   "pin": "2468"})
    pages += [unknown.get("/done"), unknown.get("/")]
    for response in pages:
        body = response.get_data()
        assert len(body) + css < 50_000
        assert b"<script" not in body
        assert b'name="viewport"' in body
