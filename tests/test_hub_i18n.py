"""The dashboard speaks Simplified Chinese by default and English on request;
its committed catalogue is compiled, complete and keeps every placeholder.

The extraction here uses the same keywords as the command in hub/web/i18n.py,
so a message added to the code or a template without a translation fails
``test_every_message_is_translated`` instead of shipping in English."""

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from hub.db import open_db
from hub.web import i18n

from .hubweb import csrf_token, make_app, signed_in
from .hubworld import world

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "hub/web/translations/zh_Hans_CN/LC_MESSAGES"
BABEL_CFG = ROOT / "hub/web/babel.cfg"
CJK = re.compile(r"[\u4e00-\u9fff]")


def read_catalog():
    with open(CATALOG / "messages.po", "rb") as f:
        return read_po(f, locale="zh_Hans_CN")


def extracted() -> set[tuple[str | None, str]]:
    """(context, message) that a fresh ``pybabel extract`` (the docstring's
    command) finds."""
    with open(BABEL_CFG) as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, **{keyword: None for keyword in i18n.KEYWORDS}}
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
            ROOT, method_map, options_map, keywords=keywords):
        message = message if isinstance(message, str) else message[0]
        if message:
            found.add((context, message))
    return found


@pytest.fixture
def setup(hub_db, hub_app, tmp_path):
    """A small hospital (tests/hubworld.py) and the app on it."""
    return hub_app, hub_db, world(hub_db, tmp_path)


@pytest.fixture(scope="module")
def admin_zh(tmp_path_factory):
    """An admin's client on one small hospital shared by the read-only page checks."""
    tmp_path = tmp_path_factory.mktemp("hospital")
    db = open_db(tmp_path / "hub.db")
    examples = world(db, tmp_path)
    app = make_app(tmp_path / "hub.db", PHOTOS_DIR=str(tmp_path / "photos"))
    yield signed_in(app, db, "admin"), examples
    db.close()


def text(response) -> str:
    return response.get_data(as_text=True)


def nav(page: str) -> str:
    match = re.search(r"(?s)<nav>(.*?)</nav>", page)
    assert match, "no navigation bar"
    return match.group(1)


# --- the catalogue ------------------------------------------------------------

def test_committed_mo_is_the_compiled_po(tmp_path):
    """``pybabel compile`` of the committed .po gives the committed .mo."""
    catalog = read_catalog()
    compiled = tmp_path / "messages.mo"
    with open(compiled, "wb") as f:
        write_mo(f, catalog, use_fuzzy=False)
    with open(compiled, "rb") as f:
        fresh = {(m.context, m.id): m.string for m in read_mo(f) if m.id}
    with open(CATALOG / "messages.mo", "rb") as f:
        committed = {(m.context, m.id): m.string for m in read_mo(f) if m.id}
    assert len(committed) > 400
    assert committed == fresh, (
        "messages.mo is stale: run .venv/bin/pybabel compile -d hub/web/translations")


def test_the_documented_extract_command_has_every_keyword():
    """The command in i18n.py's docstring finds what this test's extraction finds."""
    command = re.search(r"pybabel extract (.*?) -o ", i18n.__doc__, re.S).group(1)
    for keyword in i18n.KEYWORDS:
        assert re.search(rf"-k {re.escape(keyword)}\b", command), keyword


def test_every_message_is_translated():
    used = extracted()
    # each way of marking a message is found: _l() (nav, labels), N_() in the
    # domain modules, _() and pgettext() in templates
    assert {(None, "Tickets"), (None, "Civility office"), (None, "Minutes late"),
            (None, "the file is empty"), (None, "The polygon needs %(min)d to %(max)d points."),
            (None, "Choose at least one zone."), (None, "Sign in"), ("place", "Name")} <= used
    translated = {}
    for message in read_catalog():
        if not message.id:
            continue
        key = (message.context, message.id[0] if isinstance(message.id, tuple) else message.id)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(s.strip() for s in strings) and not message.fuzzy, key
        translated[key] = strings
    assert sorted(used - set(translated)) == [], (
        "untranslated: update the .po (see hub/web/i18n.py)")
    assert sorted(set(translated) - used) == [], "obsolete entries in the .po"


PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")
MARKUP = re.compile(r"<[^>]+>|&#?\w+;")


def test_translations_keep_placeholders_and_markup():
    catalog = read_catalog()
    assert [(m.id, errors) for m, errors in catalog.check() if errors] == []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            assert sorted(PLACEHOLDER.findall(string)) == sorted(PLACEHOLDER.findall(ids[0])), \
                (ids[0], string)
            assert sorted(MARKUP.findall(string)) == sorted(MARKUP.findall(ids[0])), \
                (ids[0], string)
        # words of English (not just placeholders) come out in Chinese
        if re.search(r"[A-Za-z]{2}", PLACEHOLDER.sub("", ids[0])):
            assert all(CJK.search(s) for s in strings), ("not in Chinese", ids[0])


# --- pages --------------------------------------------------------------------

def test_sign_in_page_is_chinese_by_default_and_english_on_request(setup):
    app, _, _ = setup
    client = app.test_client()
    page = text(client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert '<html lang="zh-CN">' in page
    assert re.search(r"<title>登录 · general-hospital</title>", page)
    assert "用户名或工号" in page and "Sign in" not in page
    assert re.search(r'<a class="lang" href="[^"]*"[^>]*>English</a>', page)
    page = text(client.get("/login?lang=en"))
    assert '<html lang="en">' in page and "<title>Sign in · " in page
    assert "Username or staff number" in page and "登录" not in page


def test_office_sees_chinese_then_english_after_lang_en(setup):
    app, db, examples = setup
    client = signed_in(app, db, "office")
    page = text(client.get("/tickets/"))
    assert '<html lang="zh-CN">' in page
    bar = nav(page)
    for label in ("今日", "活动", "工单", "志愿时长", "热点", "人员", "名册", "区域", "节点"):
        assert f">{label}<" in bar, label
    assert "Tickets" not in bar and "Sign out" not in page
    assert "文明办" in page and "退出登录" in page  # the role and the sign-out button
    assert "类别" in page and "筛选" in page and "已派单" in page

    response = client.get("/lang/en?next=/tickets/")
    assert response.status_code == 303 and response.headers["Location"] == "/tickets/"
    page = text(client.get("/tickets/"))
    assert '<html lang="en">' in page
    assert ">Tickets<" in nav(page) and ">Volunteer hours<" in nav(page)
    assert "Civility office" in page and "Sign out" in page and "Assigned" in page
    assert not CJK.search(nav(page))
    assert "工单" not in page
    # the choice sticks until changed back
    assert "Upload a floor plan" in text(client.get("/zones/"))
    client.get("/lang/zh?next=/zones/")
    assert "上传平面图" in text(client.get("/zones/"))


@pytest.mark.parametrize("path, expected", [
    ("/", ("今日", "全部活动")),
    ("/events/", ("新建活动", "即将举行", "各科室的日历订阅")),
    ("/events/ev-1", ("学时", "在场", "缺席")),
    ("/events/ev-1/edit", ("编辑活动", "实时考勤", "讲座")),
    ("/tickets/{ticket_id}", ("工单 #", "处理记录", "上报人", "流转工单")),
    ("/hours/", ("待审核", "按人员汇总", "通过", "驳回")),
    ("/hotspots/", ("反复出现的热点", "各区域每周上报数", "平面图")),
    ("/people/", ("姓名或工号", "全部科室", "已通过时长", ">姓名<")),
    ("/people/{staff_id}", ("考勤", "导出 XLSX", "活动学时")),
    ("/staff/", ("导入名册", "为科室重新生成 PIN 码", "员工")),
    ("/staff/{staff_id}", ("PIN 码", "已绑定的手机", "解除绑定")),
    ("/departments/", ("添加科室", "编号", ">名称<")),
    ("/accounts/", ("新建账号", "用户名", "文明办")),
    ("/zones/", ("上传平面图", "日历订阅", "2 层", ">名称<")),
    ("/zones/new", ("新建区域", "区域编号", "院区")),
    ("/zones/plans/upload", ("图形文件", "楼宇")),
    ("/nodes/", ("节点", "在线", "已同步")),
])
def test_pages_are_in_chinese(admin_zh, path, expected):
    client, examples = admin_zh
    response = client.get(path.format(**examples))
    assert response.status_code == 200
    page = text(response)
    assert '<html lang="zh-CN">' in page and "退出登录" in page
    for words in expected:
        assert words in page, (path, words)


def test_messages_from_code_are_translated(setup):
    """Flash and form messages from the web modules (_), the domain modules
    (N_, with parameters) and the sign-in."""
    app, db, _ = setup
    anonymous = app.test_client()
    response = anonymous.post("/login", data={"username": "nobody", "password": "x" * 12,
                                               "csrf_token": csrf_token(anonymous)})
    assert "用户名不存在或密码错误。" in text(response)

    client = signed_in(app, db, "admin")
    response = client.get("/tickets/?page=0")
    assert response.status_code == 400 and "页码必须是 1 至 100 之间的数字。" in text(response)
    response = client.post("/departments/", data={"department": "x" * 200, "name": "心内科",
                                                  "csrf_token": client.csrf})
    assert response.status_code == 400
    assert re.search(r"科室编号须为 1 至 \d+ 个字符，且不含控制字符", text(response))
    response = client.post("/departments/", data={"department": "cardiology",
                                                  "name": "心内科", "csrf_token": client.csrf},
                           follow_redirects=True)
    assert "科室 心内科 已添加。" in text(response)
    response = client.post("/zones/new", data={"zone": "ward-9", "name": "",
                                               "csrf_token": client.csrf})
    assert response.status_code == 400 and "请填写名称。" in text(response)
    response = client.post("/accounts/", data={"username": "new-office", "role": "office",
                                               "password": "short", "csrf_token": client.csrf})
    assert response.status_code == 400 and "密码至少需要 10 个字符" in text(response)


def test_staff_record_and_its_export_are_in_chinese(setup):
    app, db, examples = setup
    client = signed_in(app, db, "staff", staff_id=examples["staff_id"])
    page = text(client.get("/me"))
    assert ">我的记录<" in nav(page) and "员工" in page and "在场" in page
    export = client.get("/me/export.csv")
    assert export.status_code == 200
    sheet = export.get_data().decode("utf-8-sig")
    assert "签到方式" in sheet and "迟到分钟数" in sheet and "Check-in method" not in sheet
    client.get("/lang/en")
    assert "Check-in method" in client.get("/me/export.csv").get_data().decode("utf-8-sig")


def test_every_page_renders_in_both_languages(setup):
    """Each dashboard page an admin can open answers in Chinese with the
    translated navigation, and the same in English (no catalogue errors)."""
    app, db, examples = setup
    client = signed_in(app, db, "admin")
    pages = [rule for rule in app.url_map.iter_rules()
             if "GET" in rule.methods and not rule.arguments - set(examples)
             and not rule.rule.startswith(("/api/", "/static", "/lang", "/open311"))]
    seen = 0
    for code, marker in (("zh", ">工单<"), ("en", ">Tickets<")):
        client.get(f"/lang/{code}")
        for rule in pages:
            url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(examples[m.group(1)]), rule.rule)
            response = client.get(url)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            page = text(response)
            if "<nav>" in page:
                assert marker in nav(page), (code, url)
                seen += 1
    assert seen > 30
