"""The demo hub's data: what a civility office would find after three months
of use, so that every dashboard page has something to show.

* a roster of 24 (20 clinical staff with scripted phones, a cleaning team, a
  facilities technician and a guard) in named departments, PINs derived from
  the staff number (D007 -> 0007);
* four floors with JSON-outline floor plans and seven zones drawn on them;
* two nodes besides the demo's own two (the lecture hall's and the seminar
  room's, which ``rounds-provision node add`` registers, demo/run.py): a
  ward node that went silent 20 minutes ago and an outpatient node that said
  goodbye;
* events: a lecture happening now, a CPR training later, a fire-safety
  training yesterday with its attendance, and a health-education speech
  contest (健康科普演讲比赛) in the seminar room next door, set up with its
  rule, three acts and three judges (demo/run.py runs its scoring);
* a satisfaction survey (满意度测评): an inpatient questionnaire, a task in
  two wards (which now belong to a department) for two survey takers, with
  an alert on a low overall score, and three weeks of responses (Ward 3
  East's environment slipping with its hygiene hotspot); a low score in
  the latest round opened a service ticket;
* twelve weeks of reports in several zones and categories, turned into
  tickets the way ingest does it (``hub.ingest.store.write_batch`` then
  ``hub.tickets.materialize``, each at its own time), moved through their
  states with volunteer hours approved, rejected or still pending; Ward 3
  East's hygiene comes back often enough in the last week to be a recurring
  hotspot, and two open tickets are past their due time;
* accounts: admin, office (with an API token for the scripted office) and
  the cleaning lead, a department reviewer who is on the roster too.

The hospital's language is Chinese: the site, departments, zones, floor
plans, events, notes, comments and people's names are stored in Chinese, as a
Chinese hospital's office would type them; the site, departments and zones
also carry their English names (``name_en``), which the dashboard shows to a
reader who picks English (docs/dashboard.md, "Languages").

It is deterministic apart from ``now`` and the secrets, and quick: the slow
part, scrypt for 24 PINs, runs on every core while the accounts are made.
"""

import json
import os
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from protocol import topics
from protocol.clock import iso
from protocol.pins import device_id, hash_pin

from hub.assessment import items
from hub.attendance.attendance import set_expected
from hub.contests import acts
from hub.db import open_db
from hub.fleet import site
from hub.ingest.store import write_batch
from hub.people import accounts, roster
from hub.records import entries, review
from hub.schedule import registration, zones
from hub.summaries import draft as summary_draft
from hub.summaries import facts as summary_facts
from hub.summaries import store as summary_store
from hub.surveys import questionnaires, tasks as survey_tasks
from hub.tickets import hours, tickets

SITE, NODE, ZONE = "demo", "hall-a-1", "hall-a"
SITE_NAME, SITE_NAME_EN = "示范医院", "Demo Hospital"
LECTURE_ID = "lecture-hand-hygiene"
LECTURE_TITLE = "手卫生与感染控制"
PAST_EVENT_ID = "training-fire-safety"
HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")  # the hub's default time zone
HOTSPOT = ("ward-3e", "hygiene")
# The contest next door: its own zone and node (the lecture has hall-a's node,
# whose portal counts a check-in for the one event on there).
CONTEST_ID = "contest-health-talk"
CONTEST_TITLE = "健康科普演讲比赛"
CONTEST_ZONE, CONTEST_NODE = "seminar-2", "seminar-2-1"
# act id, title, performers
CONTEST_ACTS = (("act-1", "守护心脏，从管住血压开始", "心内科 宋佳"),
                ("act-2", "抗生素不是消炎药：用药安全小课堂", "药剂科 韩雪"),
                ("act-3", "黄金四分钟：人人学得会的心肺复苏", "急诊科 唐明、许静"))
CONTEST_JUDGES = ("D004", "D014", "D019")  # 院办: not at the lecture
CONTEST_RULE = acts.Rule(scale_min=1, scale_max=10, drop_extremes=True, judge_weight=0.6)
SURVEY_ID = "inpatient-satisfaction"
SURVEY_TASK = "wards-satisfaction"
SURVEY_ZONES = ("ward-3e", "ward-5w")
SURVEYORS = ("D006", "D016")  # 护理部's trained survey takers
SURVEY_TARGET = 40

# department -> (name, English name)
DEPARTMENT_NAMES = {
    "administration": ("院办", "Administration"), "cardiology": ("心内科", "Cardiology"),
    "civility_office": ("文明办", "Civility office"), "emergency": ("急诊科", "Emergency"),
    "environmental_services": ("保洁中心", "Environmental services"),
    "facilities": ("后勤保障科", "Facilities"), "nursing": ("护理部", "Nursing"),
    "pharmacy": ("药剂科", "Pharmacy"), "security": ("保卫科", "Security"),
    "surgery": ("普外科", "General surgery"),  # no staff here: its ward's department
}
DEPARTMENTS = ["cardiology", "nursing", "emergency", "pharmacy", "administration"]
# The 20 people with scripted phones: D001..D020, department by number.
NAMES = ["李伟", "王芳", "张敏", "刘洋", "陈静", "杨磊", "赵丽", "黄强", "周欣", "吴慧",
         "徐涛", "孙娜", "马骏", "朱艳", "胡斌", "郭平", "何杰", "林红", "高峰", "罗梅"]
# The people tickets are routed to (no scripted phone): staff id, name, department, role.
SUPPORT = (("D021", "钱浩", "environmental_services", "dept_reviewer"),
           ("D022", "冯兰", "environmental_services", "staff"),
           ("D023", "邓伟", "facilities", "staff"),
           ("D024", "曹睿", "security", "staff"))
CLEANERS = ("D021", "D022")

# Demo accounts (printed when the demo starts):
# username, role, department, linked staff number, password.
DEMO_ACCOUNTS = (
    ("admin", "admin", None, None, "rounds-admin-demo"),
    ("office", "office", None, None, "rounds-office-demo"),
    ("cleaning-lead", "dept_reviewer", "environmental_services", "D021", "rounds-review-demo"),
)
# The record's review chain: a party branch reviewer and a civility committee reviewer.
BRANCHES = ("第一党支部", "第二党支部")
REVIEW_ACCOUNTS = (("branch-1", "branch_reviewer", BRANCHES[0], "rounds-branch-demo"),
                   ("committee", "committee_reviewer", None, "rounds-committee-demo"))
FIRST_AID_ID = "training-first-aid"  # tomorrow's training that takes registration
STAFF_LOGIN = "D007"


def demo_pin(staff_id: str) -> str:
    """Demo PINs are derivable so a visitor can try the portal: D007 -> 0007."""
    return staff_id[1:].zfill(4)


def staff_name(staff_id: str) -> str:
    number = int(staff_id[1:])
    if number <= len(NAMES):
        return NAMES[number - 1]
    return next(name for sid, name, _d, _r in SUPPORT if sid == staff_id)


def phone_of(n: int) -> tuple[str, str]:
    """(loopback address, MAC) of the phone of staff member n: each scripted
    phone talks from its own address, and the node's lease file (as dnsmasq
    writes it on a real node) maps that address to the phone's MAC."""
    return f"127.0.0.{10 + n}", f"02:de:00:00:00:{n:02x}"


# -- floors and zones -------------------------------------------------------------

def _rect(x, y, w, h):
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def _ward_floor(floor: str) -> dict:
    """An inpatient floor: two wings either side of the lifts, rooms along a corridor."""
    rooms = [{"type": "rect", "x": x, "y": 380, "width": 110, "height": 180,
              "label": f"{floor}{n + 1:02d}"}
             for n, x in enumerate((40, 170, 300, 430, 700, 830, 960, 1090))]
    return {"width": 1240, "height": 600, "outline": _rect(0, 0, 1240, 600), "shapes": [
        {"type": "rect", "x": 20, "y": 20, "width": 540, "height": 260},  # west wing
        {"type": "rect", "x": 680, "y": 20, "width": 540, "height": 260},  # east wing
        {"type": "rect", "x": 0, "y": 290, "width": 1240, "height": 70, "label": "走廊"},
        {"type": "rect", "x": 580, "y": 20, "width": 80, "height": 120, "label": "电梯"},
        {"type": "rect", "x": 580, "y": 160, "width": 80, "height": 110, "label": "楼梯"},
        {"type": "rect", "x": 560, "y": 380, "width": 120, "height": 180, "label": "护士站"},
        *rooms,
        {"type": "text", "x": 620, "y": 585, "text": "南"}]}


# (campus, building, floor) -> the floor's JSON outline
FLOORS = {
    ("本部", "教学楼", "2"): {"width": 1000, "height": 600, "outline": _rect(0, 0, 1000, 600),
                                "shapes": [
        {"type": "rect", "x": 40, "y": 40, "width": 520, "height": 340},
        *({"type": "polyline", "points": [[90, y], [510, y]]} for y in range(90, 300, 35)),
        {"type": "rect", "x": 230, "y": 320, "width": 140, "height": 40, "label": "讲台"},
        {"type": "rect", "x": 600, "y": 40, "width": 360, "height": 340},
        {"type": "rect", "x": 680, "y": 160, "width": 200, "height": 100},
        {"type": "rect", "x": 0, "y": 400, "width": 1000, "height": 60, "label": "走廊"},
        {"type": "rect", "x": 40, "y": 480, "width": 120, "height": 100, "label": "楼梯"},
        {"type": "rect", "x": 840, "y": 480, "width": 120, "height": 100, "label": "电梯"},
        {"type": "text", "x": 500, "y": 540, "text": "入口"}]},
    ("本部", "住院楼", "3"): _ward_floor("3"),
    ("本部", "住院楼", "5"): _ward_floor("5"),
    ("本部", "门诊楼", "1"): {"width": 1000, "height": 700, "outline": _rect(0, 0, 1000, 700),
                                  "shapes": [
        {"type": "polygon", "points": [[20, 20], [720, 20], [720, 620], [380, 620], [380, 320],
                                       [20, 320]]},
        {"type": "rect", "x": 760, "y": 20, "width": 220, "height": 200},
        {"type": "rect", "x": 420, "y": 60, "width": 260, "height": 60, "label": "挂号"},
        {"type": "rect", "x": 20, "y": 360, "width": 160, "height": 160, "label": "卫生间"},
        {"type": "rect", "x": 200, "y": 360, "width": 160, "height": 160, "label": "分诊"},
        {"type": "rect", "x": 760, "y": 260, "width": 200, "height": 340, "label": "诊室"},
        {"type": "rect", "x": 420, "y": 640, "width": 160, "height": 60, "label": "入口"},
        {"type": "text", "x": 500, "y": 12, "text": "北"}]},
}
# zone, name, English name, (campus, building, floor), polygon on that floor's plan
# (the wards' departments are in WARD_DEPARTMENTS)
ZONES = (
    ("hall-a", "第一报告厅", "Lecture hall A", ("本部", "教学楼", "2"),
     [[40, 40], [560, 40], [560, 380], [40, 380]]),
    ("seminar-2", "第二研讨室", "Seminar room 2", ("本部", "教学楼", "2"),
     [[600, 40], [960, 40], [960, 380], [600, 380]]),
    ("ward-3w", "内科三病区西区", "Ward 3 West", ("本部", "住院楼", "3"),
     [[20, 20], [560, 20], [560, 280], [20, 280]]),
    ("ward-3e", "内科三病区东区", "Ward 3 East", ("本部", "住院楼", "3"),
     [[680, 20], [1220, 20], [1220, 280], [680, 280]]),
    ("ward-5w", "外科五病区西区", "Ward 5 West", ("本部", "住院楼", "5"),
     [[20, 20], [560, 20], [560, 280], [20, 280]]),
    ("outpatient-hall", "门诊大厅", "Outpatient hall", ("本部", "门诊楼", "1"),
     [[20, 20], [720, 20], [720, 620], [380, 620], [380, 320], [20, 320]]),
    ("pharmacy-counter", "门诊药房窗口", "Pharmacy counter", ("本部", "门诊楼", "1"),
     [[760, 20], [980, 20], [980, 220], [760, 220]]),
)
# The department each ward belongs to, for the satisfaction index per department.
WARD_DEPARTMENTS = {"ward-3w": "cardiology", "ward-3e": "cardiology", "ward-5w": "surgery"}


def _seed_places(db, now: datetime) -> None:
    """Floor plans and zones through the checks the dashboard uses."""
    for (campus, building, floor), outline in FLOORS.items():
        zones.save_plan(db, campus, building, floor, f"floor-{floor}.json",
                        json.dumps(outline).encode(), now)
    for zone, name, name_en, (campus, building, floor), polygon in ZONES:
        zones.create_zone(db, zones.check_zone(db, {
            "zone": zone, "name": name, "name_en": name_en, "campus": campus,
            "building": building, "floor": floor, "polygon": polygon,
            "department": WARD_DEPARTMENTS.get(zone, "")}))


def _seed_nodes(db, now: datetime) -> None:
    """Two nodes besides the demo's own (``node add`` registers that one): one
    that said it was online 20 minutes ago and then nothing (silent), one
    whose last word was offline."""
    for node, zone, state, ago, backlog, version in (
            ("ward-3e-1", "ward-3e", "online", 20, 37, "0.1.0"),
            ("outpatient-1", "outpatient-hall", "offline", 190, 0, "0.0.9")):
        seen = iso(now - timedelta(minutes=ago))
        db.conn.execute(
            "INSERT INTO nodes (node, zone, state, version, backlog, disk_free, clock_synced, "
            "status_ts, last_seen) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (node, zone, state, version, backlog, 11_800_000_000, seen, seen))


# -- roster and accounts ---------------------------------------------------------

def _people() -> list[tuple[str, str, str, str]]:
    people = [(f"D{i:03d}", name, DEPARTMENTS[i % len(DEPARTMENTS)], "staff")
              for i, name in enumerate(NAMES, start=1)]
    return people + list(SUPPORT)


def _seed_departments(db) -> None:
    for department, (name, name_en) in DEPARTMENT_NAMES.items():
        roster.add_department(db, department, name, name_en)


def _seed_roster_and_accounts(db, now: datetime) -> str:
    """Staff with their PINs, accounts; answers the office's API token. The
    PINs are hashed on every core while the accounts' passwords are hashed
    here (scrypt frees the GIL)."""
    people = _people()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        pin_hashes = pool.map(hash_pin, [demo_pin(p[0]) for p in people])
        for username, role, department, staff_id, password in DEMO_ACCOUNTS:
            accounts.create(db, username, role, password, department=department,
                            staff_id=staff_id, now=now)
        token = accounts.issue_token(db, "office", "demo script", now=now)
        db.conn.executemany(
            "INSERT INTO staff (staff_id, name, department, role, pin_hash) "
            "VALUES (?, ?, ?, ?, ?)", [(*person, digest)
                                       for person, digest in zip(people, pin_hashes)])
    return token


# -- events and yesterday's attendance ---------------------------------------------

def _local(day, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), HOSPITAL_TZ)


def _seed_events(db, now: datetime, site_secret: bytes) -> None:
    yesterday = now.astimezone(HOSPITAL_TZ).date() - timedelta(days=1)
    start = _local(yesterday, 14)
    rows = [
        # Starts as the scripted phones arrive (check-in opens 30 minutes early);
        # attendance is judged on the time so far, so those who came at the start
        # show as present and those who leave early as partial.
        (LECTURE_ID, LECTURE_TITLE, "lecture", [ZONE],
         now + timedelta(seconds=15), now + timedelta(minutes=60), 1),
        ("training-cpr", "心肺复苏复训", "training", [ZONE], now + timedelta(hours=3),
         now + timedelta(hours=4), 1.5),
        (PAST_EVENT_ID, "消防安全培训", "training", [ZONE], start,
         start + timedelta(hours=1), 1),
        ("duty-ward-3e-round", "内科三病区东区卫生巡查", "volunteer_duty", ["ward-3e"],
         _local(yesterday + timedelta(days=2), 9), _local(yesterday + timedelta(days=2), 10, 30),
         1),
        # Next door, while the lecture goes on: its audience checks in on the
        # seminar room's node (check-in opens 30 minutes before the start).
        (CONTEST_ID, CONTEST_TITLE, "contest", [CONTEST_ZONE], now + timedelta(minutes=1),
         now + timedelta(minutes=40), 0.5),
    ]
    db.conn.executemany(
        'INSERT INTO events (id, title, kind, zones, start, "end", credit_hours) '
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, title, kind, json.dumps(where), iso(begin), iso(end), credit)
         for i, title, kind, where, begin, end, credit in rows])
    # The lecture is for the clinical departments: their phones come (two of
    # them stay away); administration's come as walk-ins, not on the list.
    set_expected(db, LECTURE_ID, departments=["nursing", "cardiology", "emergency", "pharmacy"])
    set_expected(db, "training-cpr", departments=["emergency"])
    set_expected(db, PAST_EVENT_ID, departments=["nursing", "emergency"], staff=["D007"])
    set_expected(db, "duty-ward-3e-round", departments=["environmental_services"])
    _seed_past_attendance(db, start, site_secret)
    acts.set_up(db, CONTEST_ID, CONTEST_RULE,
                [{"act": act, "title": title, "performers": performers}
                 for act, title, performers in CONTEST_ACTS], list(CONTEST_JUDGES))


# Yesterday's fire-safety training (14:00-15:00): staff number, check-in
# method, minutes after the start they were first and last seen. D016 and
# D017 (expected) stayed away; D003 came without being expected; D012 left
# half-way (partial); D011 came 12 minutes late.
PAST_ATTENDANCE = ((1, "presence", -5, 62), (2, "portal", -3, 60), (3, "presence", -4, 60),
                   (6, "portal", 2, 59), (7, "presence", -10, 65), (11, "presence", 12, 61),
                   (12, "portal", -2, 30))


def _seed_past_attendance(db, start: datetime, site_secret: bytes) -> None:
    records = []
    for n, method, arrived, left in PAST_ATTENDANCE:
        staff_id, device = f"D{n:03d}", device_id(site_secret, phone_of(n)[1])
        first, last = start + timedelta(minutes=arrived), start + timedelta(minutes=left)
        checked_in = first + timedelta(minutes=1)
        records.append({"id": str(uuid.uuid4()), "type": "checkin", "ts": iso(checked_in),
                        "staff_id": staff_id, "event_id": PAST_EVENT_ID, "zone": ZONE,
                        "method": method, "device": device})
        records.append({"id": str(uuid.uuid4()), "type": "presence", "ts": iso(last),
                        "device": device, "staff_id": staff_id, "zone": ZONE,
                        "first_seen": iso(first), "last_seen": iso(last), "closed": True})
    write_batch(db, topics.node_up(SITE, NODE, "batch"), NODE, records, [])


# -- twelve weeks of reports and tickets ---------------------------------------------

NOTES = {
    "hygiene": ("护士站旁垃圾桶已满溢出", "走廊地面脏污", "卫生间没有纸巾和洗手液",
                "电梯口地面有洒漏"),
    "facilities": ("走廊灯一直闪烁", "闭门器坏了", "污物间水龙头漏水"),
    "safety": ("地面湿滑但没有警示牌", "消防通道被病床堵住"),
    "signage": ("安全出口指示灯不亮", "去电梯的指示牌方向标反了"),
    "service": ("家属反映服务台答复态度生硬",),
    "queue": ("窗口有人插队", "挂号窗口前拥挤"),
}
# Weekly chance of a report before the last week, per zone and category.
BACKGROUND = (("ward-3w", "hygiene", .6), ("ward-3w", "facilities", .3),
              ("ward-5w", "hygiene", .5), ("ward-5w", "safety", .25),
              ("outpatient-hall", "queue", .8), ("outpatient-hall", "hygiene", .6),
              ("outpatient-hall", "service", .3), ("pharmacy-counter", "queue", .7),
              ("hall-a", "signage", .2), ("seminar-2", "facilities", .25))
# Ward 3 East's hygiene before the last week: now and then (days ago).
HOTSPOT_BEFORE = (80, 60, 45, 31, 17)
# The last week, by hand: (hours ago, zone, category, reporter, final state, note).
# Hygiene in Ward 3 East five times (the hotspot; one spill reported twice),
# two open tickets past due, a rejected one, hours waiting for review (two of
# them the cleaning team's, for their reviewer).
RECENT = (
    (6 * 24 - 3, "ward-3e", "hygiene", "D004", "closed", None),
    (5 * 24 - 2, "ward-3e", "hygiene", "D021", "resolved", None),
    (4 * 24, "ward-3w", "facilities", "D009", "resolved", None),
    (3 * 24 + 1, "ward-3e", "hygiene", "D022", "resolved", None),
    (3 * 24 - 4, "ward-5w", "facilities", "D014", "in_progress", "512 病房呼叫按钮失灵"),
    (2 * 24 + 5, "ward-3e", "hygiene", "D008", "resolved", "电梯口地面有洒漏"),
    (2 * 24 + 4.8, "ward-3e", "hygiene", "D018", "resolved", "电梯口地面有洒漏"),
    (2 * 24 - 3, "outpatient-hall", "queue", "D010", "rejected", "3 号窗口有人插队"),
    (30, "ward-5w", "signage", "D021", "assigned", "去电梯的指示牌方向标反了"),
    (28, "pharmacy-counter", "queue", "D015", "assigned", None),
    (6, "outpatient-hall", "safety", "D020", "new", "正门入口地面湿滑，没有警示牌"),
    (5, "outpatient-hall", "hygiene", "D022", "assigned", None),
    (3, "ward-3e", "hygiene", "D006", "new", None),
)
PATHS = {"new": (), "assigned": ("assigned",), "in_progress": ("assigned", "in_progress"),
         "resolved": ("assigned", "in_progress", "resolved"),
         "closed": ("assigned", "in_progress", "resolved", "closed"), "rejected": ("rejected",)}
COMMENTS = {"assigned": "已派给责任班组", "in_progress": "正在处理",
            "resolved": "已处理，现场复核通过", "closed": "病区已确认",
            "rejected": "不属于文明办督办事项，已现场处理"}


def _history(now: datetime) -> list[tuple[datetime, str, str, str, str, str]]:
    """Every past report as (when, zone, category, reporter, final state, note), oldest first."""
    rng = random.Random(2024)
    staff = [p[0] for p in _people()]
    found = []
    for week in range(1, 12):
        for zone, category, chance in BACKGROUND:
            if rng.random() < chance:
                day = 7 * week + rng.randint(1, 5)
                at = now - timedelta(days=day, hours=rng.randint(0, 9))
                state = "rejected" if rng.random() < .08 else rng.choice(("closed", "closed",
                                                                           "resolved"))
                found.append((at, zone, category, rng.choice(staff), state,
                               rng.choice(NOTES[category])))
    for n, day in enumerate(HOTSPOT_BEFORE):
        found.append((now - timedelta(days=day, hours=2), *HOTSPOT, rng.choice(staff),
                      "closed", NOTES["hygiene"][n % len(NOTES["hygiene"])]))
    for hours_ago, zone, category, reporter, state, note in RECENT:
        found.append((now - timedelta(hours=hours_ago), zone, category, reporter, state,
                       note or NOTES[category][0]))
    return sorted(found)


def _seed_reports(db, now: datetime) -> None:
    """Each report as a node sends it, made a ticket (or attached to an open one)
    at its time; then each ticket is moved along. The hours of finished tickets
    are approved, open ones' wait for a decision."""
    made = []
    for n, (at, zone, category, reporter, state, note) in enumerate(_history(now)):
        node = f"{zone}-1"  # each zone's node (not all of them are registered here)
        write_batch(db, topics.node_up(SITE, node, "batch"), node, [{
            "id": str(uuid.uuid4()), "type": "report", "ts": iso(at),
            "report_id": f"history-{n:03d}", "staff_id": reporter, "category": category,
            "note": note, "zone": zone, "photos": [], "taken_at": iso(at)}], [])
        created = at + timedelta(minutes=2)
        made += [(int(ticket_id), state, created)
                 for ticket_id in tickets.materialize(db, created)]
    for ticket_id, state, created in made:
        _move(db, ticket_id, state, created, now)


def _move(db, ticket_id: int, state: str, created: datetime, now: datetime) -> None:
    """The office accepts or rejects; the department works on it (the cleaning
    lead for the cleaning team's tickets)."""
    team = "cleaning-lead" if tickets.get_ticket(db, ticket_id)["department"] == \
        "environmental_services" else "office"
    at = created
    for step, to in enumerate(PATHS[state]):
        at = min(at + timedelta(minutes=40 + 90 * step), now - timedelta(minutes=1))
        tickets.transition(db, ticket_id, to, "office" if to in ("assigned", "rejected")
                           else team, COMMENTS[to], now=at)
    if state in ("resolved", "closed"):
        for entry in hours.entries(db, state="pending"):
            if entry["ticket_id"] == ticket_id:
                hours.decide(db, entry["id"], True, "office", now=at)


# -- a satisfaction survey in two wards ----------------------------------------------

QUESTIONS = [
    {"id": "overall", "kind": "scale", "label": "总体满意度", "label_en": "Overall satisfaction"},
    {"id": "nursing", "kind": "scale", "label": "护理服务（态度、及时性）",
     "label_en": "Nursing care (attitude, responsiveness)"},
    {"id": "doctors", "kind": "scale", "label": "医生沟通与病情解释",
     "label_en": "Doctors' communication"},
    {"id": "environment", "kind": "scale", "label": "病房环境（清洁、安静）",
     "label_en": "Ward environment (clean, quiet)"},
    {"id": "improve", "kind": "multi", "label": "最希望改进的方面（可多选）",
     "label_en": "What should improve most (any)", "required": False, "options": [
         {"id": "toilets", "label": "卫生间清洁", "label_en": "Clean toilets"},
         {"id": "quiet", "label": "夜间安静", "label_en": "Quiet at night"},
         {"id": "call-bell", "label": "呼叫铃响应", "label_en": "Call-bell response"},
         {"id": "meals", "label": "餐饮", "label_en": "Meals"},
         {"id": "waiting", "label": "检查等候时间", "label_en": "Waiting for tests"},
         {"id": "signs", "label": "指引标识", "label_en": "Signs and directions"}]},
    {"id": "comment", "kind": "text", "label": "其他意见或建议",
     "label_en": "Other comments or suggestions", "required": False},
]
# Per ward: the mean of each 1-5 question (the environment's for weeks ago and
# for the last eight days: Ward 3 East's slips with its hygiene hotspot), what
# its patients would improve, and what they write.
WARD_MOOD = {
    "ward-3e": {"overall": 4.2, "nursing": 4.5, "doctors": 4.3, "environment": (4.2, 3.1),
                "improve": ("toilets", "quiet", "meals"),
                "comments": ("护士很耐心，打针技术好", "卫生间地面经常有水，希望多打扫",
                             "垃圾桶满了没人及时清理", "医生查房时解释得很清楚",
                             "走廊晚上有点吵")},
    "ward-5w": {"overall": 4.1, "nursing": 4.0, "doctors": 4.4, "environment": (4.0, 4.1),
                "improve": ("call-bell", "waiting", "meals", "signs"),
                "comments": ("手术前医生讲得很详细，心里踏实了", "做检查等了很久",
                             "饭菜偏咸", "出院手续办理很快，谢谢")},
}
# This morning in Ward 5 West: the call bell went unanswered. Overall 2 trips
# the task's alert, which opens a service ticket for the ward.
LOW_SCORE = {"overall": 2, "nursing": 2, "doctors": 4, "environment": 3,
             "improve": ["call-bell", "quiet"],
             "comment": "夜里按了呼叫铃十多分钟才有人来，希望改进"}


def _answers(rng: random.Random, zone: str, recent: bool) -> dict:
    mood = WARD_MOOD[zone]

    def scale(mean: float) -> int:
        return max(1, min(5, round(rng.gauss(mean, 0.7))))

    answers = {q: scale(mood[q]) for q in ("overall", "nursing", "doctors")}
    answers["overall"] = max(3, answers["overall"])  # only the one low score alerts
    answers["environment"] = scale(mood["environment"][1 if recent else 0])
    if rng.random() < 0.6:
        answers["improve"] = rng.sample(mood["improve"], rng.choice((1, 1, 2)))
    if rng.random() < 0.4:
        answers["comment"] = rng.choice(mood["comments"])
    return answers


def _seed_survey(db, now: datetime) -> None:
    """The questionnaire, the task (open for three weeks so far, two more to
    go) and its responses as the wards' nodes sent them, each at its time."""
    version = questionnaires.save(db, SURVEY_ID, "住院患者满意度调查", QUESTIONS, "office",
                                  title_en="Inpatient satisfaction", now=now - timedelta(days=22))
    opens = now - timedelta(days=20)
    survey_tasks.save(db, {
        "id": SURVEY_TASK, "title": "内科三病区东区、外科五病区西区住院患者满意度测评",
        "questionnaire": SURVEY_ID, "version": version, "zones": list(SURVEY_ZONES),
        "target": SURVEY_TARGET, "opens_at": iso(opens), "closes_at": iso(now + timedelta(days=14)),
        "surveyors": list(SURVEYORS),
        "alert": {"question": "overall", "at_most": 2, "category": "service"}},
        "office", now=opens)
    rng = random.Random(14)
    taken = []  # (when, zone, surveyor, answers)
    today = now.astimezone(HOSPITAL_TZ).date()
    for days_ago in range(19, 0, -1):
        day = today - timedelta(days=days_ago)
        if day.weekday() >= 5:
            continue  # the survey takers walk the wards on weekdays
        for zone, surveyor in zip(SURVEY_ZONES, SURVEYORS):
            for _ in range(rng.choice((0, 1, 1, 2))):
                at = _local(day, rng.randint(9, 16), rng.randrange(60))
                taken.append((at, zone, surveyor, _answers(rng, zone, days_ago <= 8)))
    for k in range(8):  # the latest round, ending some minutes ago
        zone = SURVEY_ZONES[k % 2]
        at = now - timedelta(minutes=25 + 17 * k)
        answers = LOW_SCORE if k == 3 else _answers(rng, zone, True)
        taken.append((at, zone, SURVEYORS[k % 2], answers))
    for at, zone, surveyor, answers in sorted(taken, key=lambda t: t[0]):
        node = f"{zone}-1"
        write_batch(db, topics.node_up(SITE, node, "batch"), node, [{
            "id": str(uuid.uuid4()), "type": "survey_response", "ts": iso(at),
            "task_id": SURVEY_TASK, "questionnaire": SURVEY_ID, "version": version,
            "staff_id": surveyor, "zone": zone, "answers": answers, "taken_at": iso(at)}], [])
        if answers is LOW_SCORE:  # the alert's report becomes a ticket, as ingest does it
            tickets.materialize(db, at + timedelta(minutes=2))


def _seed_year(db, now: datetime) -> None:
    """Issue 15's parts with data: this year's assessment items; tomorrow's
    first-aid training taking registration, full with a waiting list; party
    branches, the branch and committee reviewers' accounts, and record entries
    at each review level (one sent back, one rejected); the drafted summary of
    yesterday's fire-safety training, as the office saved it."""
    year = now.astimezone(HOSPITAL_TZ).year
    items.save(db, year, "training", "继续教育学时", "credit_hours", 12,
               title_en="Training credit hours", event_kinds=["training", "lecture"],
               targets={"department:emergency": 16})
    items.save(db, year, "sessions", "理论学习次数", "events", 8, title_en="Study sessions")
    items.save(db, year, "volunteer", "志愿服务时长", "volunteer_hours", 10,
               title_en="Volunteer hours")
    items.save(db, year, "deeds", "好人好事与表扬", "entries", 2,
               title_en="Good deeds and thanks", entry_kinds=["good_deed", "thanks_letter"])
    start = _local(now.astimezone(HOSPITAL_TZ).date() + timedelta(days=1), 14)
    db["events"].insert({"id": FIRST_AID_ID, "title": "急救技能复训", "kind": "training",
                         "zones": json.dumps(["hall-a"]), "start": iso(start),
                         "end": iso(start + timedelta(hours=2)), "credit_hours": 2})
    registration.configure(db, FIRST_AID_ID, {"opens_at": now - timedelta(days=2),
                                              "closes_at": start, "capacity": 4,
                                              "required": True}, now)
    for n, staff_id in enumerate(("D003", "D007", "D011", "D015", "D002", "D008")):
        registration.register(db, FIRST_AID_ID, staff_id, now - timedelta(hours=20 - n))
    db.conn.executemany("UPDATE staff SET branch = ? WHERE staff_id = ?",
                        [(BRANCHES[i % 2], f"D{i:03d}") for i in range(1, len(NAMES) + 1)])
    for username, role, branch, password in REVIEW_ACCOUNTS:
        accounts.create(db, username, role, password, branch=branch, now=now)
    office = {"username": "admin", "role": "admin"}
    steps = ((), ("approve",), ("approve", "approve"), ("approve", "approve", "approve"),
             ("return",), ("approve", "reject"))
    for n, (staff_id, kind, title, moves) in enumerate(zip(
            ("D001", "D003", "D005", "D007", "D009", "D011"),
            ("good_deed", "thanks_letter", "study_reflection", "good_deed", "volunteering",
             "good_deed"),
            ("帮助迷路老人找到门诊", "患者家属送来感谢信", "《医德医风》学习心得", "夜班协助抢救",
             "社区义诊", "拾金不昧"), steps)):
        entry = entries.file_entry(db, staff_id, kind, title, "", (now - timedelta(
            days=10 + n)).astimezone(HOSPITAL_TZ).date().isoformat(), who=staff_id,
            now=now - timedelta(days=9))
        for action in moves:
            review.decide(db, entry["id"], office, action,
                          "" if action == "approve" else "请补充具体时间和证明人",
                          now=now - timedelta(days=8))
    facts = summary_facts.event_facts(db, PAST_EVENT_ID, HOSPITAL_TZ, now)
    for lang in ("zh", "en"):
        summary_store.save(db, "event", PAST_EVENT_ID, lang,
                           summary_draft.write("event", facts, lang), facts, "office", now)


def seed_hub(db_path: Path, now: datetime, site_secret: bytes) -> str:
    """Seed the demo hub in one transaction; answers the office's API token."""
    db = open_db(db_path)
    try:
        with db.atomic():
            site.set_name(db, SITE_NAME, SITE_NAME_EN)
            _seed_departments(db)  # before the zones: a ward names its department
            _seed_places(db, now)
            _seed_nodes(db, now)
            token = _seed_roster_and_accounts(db, now)
            # Every other phone was bound at an earlier lecture: it checks in with one tap.
            db.conn.executemany(
                "INSERT INTO devices (device, staff_id, bound_at, node) VALUES (?, ?, ?, ?)",
                [(device_id(site_secret, phone_of(i)[1]), f"D{i:03d}",
                  iso(now - timedelta(days=7)), NODE) for i in range(1, len(NAMES) + 1, 2)])
            _seed_events(db, now, site_secret)
            _seed_reports(db, now)
            _seed_survey(db, now)
            _seed_year(db, now)
    finally:
        db.close()
    return token
