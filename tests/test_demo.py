"""The README's first command: `make demo` starts, the dashboard shows
attendance from the scripted phones, every dashboard page has data for the
printed demo accounts, the survey board has a task with responses, the
contest next door is scored act by act through its node's portal to a final
ranking, and Ctrl-C stops every process. Its site and nodes are provisioned
with `rounds-provision`: the broker speaks only TLS, and the node runs with
its bundle's config."""

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from .conftest import ROOT, free_port, wait_for

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
# "  office / rounds-office-demo  (office: ...)": one printed account per line.
CREDENTIALS = re.compile(r"^\s+(\S+) / (\S+)\s+\((\w+):", re.M)
CLEANING_TEAM = {"D021", "D022"}  # the environmental_services staff of the demo roster
SURVEY_TASK, CONTEST = "wards-satisfaction", "contest-health-talk"  # demo/seed.py
CONTEST_JUDGES, CONTEST_AUDIENCE = 3, 8  # demo/seed.py, demo/run.py


def get_json(url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=3) as response:
            return json.load(response)
    except (OSError, ValueError):  # URLError, refused, timed out (a busy machine); bad JSON
        return None


class Browser:
    """A person at the dashboard: signs in through the real /login form (with
    the CSRF token of the page) and keeps the session cookie."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        login = self.get("/login")
        form = {"csrf_token": CSRF.search(login).group(1), "username": username,
                "password": password}
        with self.opener.open(f"{base}/login", data=urllib.parse.urlencode(form).encode(),
                              timeout=10) as response:  # 303 to the role's home page
            self.home = urllib.parse.urlsplit(response.geturl()).path

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            assert response.status == 200, path
            return response.read().decode()

    def status(self, path: str) -> int:
        try:
            with self.opener.open(self.base + path, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


def printed_accounts(output_file) -> dict:
    """role -> (username, password) as the demo printed them."""
    text = output_file.read_text()
    return {role: (user, password) for user, password, role in CREDENTIALS.findall(text)}


def check_office_pages(office: Browser, attendee: str) -> None:
    """Every page of the office's navigation answers with the seeded data."""
    assert office.home == "/"
    today = office.get("/")  # in the hospital's language, Chinese, with the site's name
    assert "<title>今日 · 示范医院</title>" in today
    assert "手卫生与感染控制" in today and attendee in today
    events = office.get("/events/")
    assert "消防安全培训" in events and "心肺复苏复训" in events  # past and coming
    board = office.get("/tickets/")
    assert "overdue-marker" in board  # an open ticket past its due time
    assert {"内科三病区东区", "门诊大厅", "第一报告厅"} <= set(
        re.findall(r"<td>([^<]+)</td>", board))
    assert 'class="state-rejected' in office.get("/tickets/?f=1&state=rejected")
    hours = office.get("/hours/")
    assert len(re.findall(r'<tr id="entry-\d+">', hours)) >= 3  # pending decisions
    assert "冯兰" in hours and "保洁中心" in hours
    hotspots = office.get("/hotspots/")
    recurring = hotspots[hotspots.index('id="recurring"'):hotspots.index('id="heatmap"')]
    assert "内科三病区东区" in recurring
    heatmap = hotspots[hotspots.index('id="heatmap"'):hotspots.index('id="floor-plan"')]
    assert len(re.findall(r'class="cell"', heatmap)) >= 5 * 12  # zones x 12 weeks
    floor = hotspots[hotspots.index('id="floor-plan"'):]
    assert 'data-zone="ward-3e"' in floor and "<polygon" in floor
    people = office.get("/people/")
    assert "钱浩" in people and "赵丽" in people
    staff = office.get("/staff/")
    assert "冯兰" in staff and "保洁中心" in staff
    zones = office.get("/zones/")
    assert "外科五病区西区" in zones and "门诊大厅" in zones
    plans = sorted(set(re.findall(r"/zones/plans/\d+\.svg", zones)))
    assert len(plans) == 4 and "<rect" in office.get(plans[0])
    editor = office.get("/zones/ward-3e/edit")
    assert re.search(r'id="plan-polygon" points="680,20 1220,20 [^"]+"', editor)
    fleet = office.get("/nodes/")
    health = dict(re.findall(r'<tr id="node-([^"]+)" data-health="([^"]+)"', fleet))
    assert health == {"hall-a-1": "online", "seminar-2-1": "online", "ward-3e-1": "silent",
                      "outpatient-1": "offline"}


def check_reviewer_pages(reviewer: Browser, api_get, spill_id: int) -> None:
    """The cleaning lead sees their department's tickets and their staff's hours only."""
    assert reviewer.home == "/tickets/"
    departments = {t["id"]: t["department"] for t in api_get("/tickets?limit=5000")}
    shown = {int(i) for i in re.findall(r'data-ticket="(\d+)"', reviewer.get("/tickets/?f=1"))}
    assert spill_id in shown and len(shown) > 10
    assert {departments[i] for i in shown} == {"environmental_services"}
    other = next(i for i, d in departments.items() if d != "environmental_services")
    assert reviewer.status(f"/tickets/{other}") == 404
    hours = reviewer.get("/hours/")
    assert set(re.findall(r'data-staff="([^"]+)"', hours)) == CLEANING_TEAM
    assert "冯兰" in hours


def check_survey(api_get, office: Browser) -> None:
    """The seeded survey task: open, with responses, its index by ward and by
    department week by week, and the low score's service ticket."""
    def fetched(path):  # the JSON at path, asked again while a busy machine times out
        return wait_for(lambda: api_get(path), message=path)

    [task] = [t for t in fetched("/surveys") if t["id"] == SURVEY_TASK]
    assert task["open"] and 0 < task["count"] <= task["target"] and task["index"] is not None
    assert task["zones"] == ["ward-3e", "ward-5w"] and task["alert"]["category"] == "service"
    detail = fetched(f"/surveys/{SURVEY_TASK}")
    assert detail["summary"]["count"] == task["count"]
    assert {d["department"] for d in detail["by_department"]} == {"cardiology", "surgery"}
    assert len({d["week"] for d in detail["by_department"]}) >= 3  # a trend
    [alert] = [t for t in fetched("/tickets?zone=ward-5w&limit=5000") if t["source"] == "survey"]
    assert alert["category"] == "service" and "overall = 2" in alert["note"]
    board = office.get("/surveys/")
    assert "内科三病区东区、外科五病区西区住院患者满意度测评" in board
    assert "总体满意度" in office.get(f"/surveys/{SURVEY_TASK}")


def check_contest(api_get, office: Browser) -> None:
    """The contest's three acts were scored on the seminar room's portal by
    its judges and its checked-in audience, and the ranking froze."""
    contest = wait_for(lambda: (found := api_get(f"/events/{CONTEST}/contest") or {})
                       .get("final") and found, timeout=120,
                       message="the contest's final ranking")
    rows = contest["rows"]
    assert len(rows) == 3 and contest["frozen_at"] and contest["current"] is None
    assert all(r["judge_count"] == CONTEST_JUDGES and r["audience_count"] == CONTEST_AUDIENCE
               and r["total"] is not None for r in rows), rows
    assert [r["total"] for r in rows] == sorted((r["total"] for r in rows), reverse=True)
    assert rows[0]["rank"] == 1 and contest["rule"]["judge_weight"] == 0.6
    screen = office.get(f"/events/{CONTEST}/screen")
    assert all(r["title"] in screen for r in rows)


def check_broker_speaks_only_tls(site_dir, port: int) -> None:
    """A CONNECT in the clear gets no CONNACK; a TLS client that trusts the
    site's CA (from site init) is served for the name nodes use."""
    connect = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x04anon"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"\x10" + bytes([len(connect)]) + connect)
        try:
            answer = raw.recv(16)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert not answer.startswith(b"\x20"), "a plain-text client got a CONNACK"
    context = ssl.create_default_context(cafile=str(site_dir / "ca" / "ca.crt"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def check_provisioned(demo_dir, broker_port: int, output: str) -> None:
    """The technician's commands ran (and were printed); the node's config is
    its bundle's, with only Pi paths and the simulated radio changed; the hub
    runs with the site's hub.json."""
    site_dir = demo_dir / "site"
    assert f"$ rounds-provision --site-dir {site_dir} site init --site demo" in output
    assert f"$ rounds-provision --site-dir {site_dir} node add hall-a-1 --zone hall-a" in output
    bundle = site_dir / "bundles" / "hall-a-1"
    for name in ("node.json", "ca.crt", "first-boot.sh", "label.png", "label.pdf"):
        assert (bundle / name).is_file(), name
    assert (site_dir / "bundles" / "hall-a-1.tar.gz").is_file()
    assert "hall-a-1:" in (site_dir / "broker" / "passwd").read_text()
    packed = json.loads((bundle / "node.json").read_text())
    running = json.loads((demo_dir / "node" / "node.json").read_text())
    assert packed["mqtt"]["tls_ca"] == "/etc/rounds/ca.crt"  # a Pi path in the bundle
    assert running["mqtt"] == {**packed["mqtt"], "tls_ca": str(bundle / "ca.crt")}
    assert running["mqtt"]["port"] == broker_port and running["mqtt"]["username"] == "hall-a-1"
    assert running["db"] == str(demo_dir / "node" / "node.db")
    unchanged = ("site", "node", "zone", "site_secret", "timezone", "shape", "wifi")
    assert {k: running[k] for k in unchanged} == {k: packed[k] for k in unchanged}
    assert running["zone"] == "hall-a"
    assert "mqtt.tls_ca: /etc/rounds/ca.crt -> " in output  # the changes are printed
    hub = json.loads((site_dir / "hub.json").read_text())
    assert hub["db"] == str(demo_dir / "hub.db") and hub["web"] == {"secure_cookies": False}
    assert hub["mqtt"]["tls_ca"] == str(site_dir / "ca" / "ca.crt")


def test_make_demo_shows_attendance_and_stops_on_ctrl_c(tmp_path):
    web, portal, broker, contest = free_port(), free_port(), free_port(), free_port()
    args = (f"--data-dir {tmp_path / 'demo'} --web-port {web} --portal-port {portal} "
            f"--broker-port {broker} --contest-portal-port {contest} --phones 6")
    log = open(tmp_path / "demo.out", "wb")
    proc = subprocess.Popen(["make", "-s", "demo", f"DEMO_ARGS={args}"], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        token_file = tmp_path / "demo" / "office.token"
        token = wait_for(lambda: token_file.exists() and token_file.read_text(), timeout=120,
                         message="the demo's office token")
        attendance_url = f"http://127.0.0.1:{web}/api/v1/events/lecture-hand-hygiene/attendance"
        def checked_in():
            rows = (get_json(attendance_url, token) or {}).get("attendance", [])
            return [r for r in rows if r["checked_in_at"]]

        # Six phones, one in seven mistypes its PIN: at least five check in.
        rows = wait_for(lambda: checked_in()[4:] and checked_in(), timeout=120,
                        message="attendance on the dashboard")
        assert all(r["node"] == "hall-a-1" for r in rows)
        # The node reached the hub through the provisioned broker, which only speaks TLS.
        check_broker_speaks_only_tls(tmp_path / "demo" / "site", broker)
        check_provisioned(tmp_path / "demo", broker, (tmp_path / "demo.out").read_text())
        assert {r["method"] for r in rows} <= {"portal", "presence"}
        # Bound phones that never open the portal are checked in by presence alone,
        # and the two who leave early end up partial with the minutes they missed.
        assert any(r["method"] == "presence" for r in rows)
        # The two leave a few seconds apart: wait for both, then check it is them.
        left_early = wait_for(
            lambda: (found := [r for r in checked_in() if r["status"] == "partial"
                               and (r["early_leave_minutes"] or 0) > 5])[1:] and found,
            timeout=120, message="both early leavers shown as partial")
        assert {r["staff_id"] for r in left_early} == {"D005", "D013"}
        # Snap-and-report: photos filed on the portal became routed tickets (the second
        # report of the spill attached as a duplicate), the office accepted one and the
        # reporter's hours were approved; the seeded ward history is a recurring hotspot.
        api = f"http://127.0.0.1:{web}/api/v1"
        [spill] = wait_for(lambda: [t for t in get_json(f"{api}/tickets?zone=hall-a", token) or []
                                    if t["category"] == "hygiene" and t["state"] == "assigned"],
                           timeout=120, message="the assigned hygiene ticket")
        assert spill["department"] == "environmental_services" and spill["reporters"] == 2
        hours = wait_for(lambda: (get_json(f"{api}/hours?state=approved", token) or {}).get("entries"),
                         message="approved hours")
        assert hours[0]["staff_id"] == "D001" and hours[0]["ticket_id"] == spill["id"]
        recurring = get_json(f"{api}/hotspots", token)["recurring"]
        assert any(h["zone"] == "ward-3e" and h["category"] == "hygiene" and h["recurring"]
                   for h in recurring)
        home = urllib.request.Request(f"http://127.0.0.1:{web}/",
                                      headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(home, timeout=5) as page:
            html = page.read().decode()
        assert "手卫生与感染控制" in html and rows[0]["name"] in html
        # The printed accounts sign in through the login form; every page has data.
        accounts = wait_for(lambda: printed_accounts(tmp_path / "demo.out").get("staff")
                            and printed_accounts(tmp_path / "demo.out"),
                            message="the printed demo credentials")
        base = f"http://127.0.0.1:{web}"
        office = Browser(base, *accounts["office"])
        check_office_pages(office, rows[0]["name"])
        check_reviewer_pages(Browser(base, *accounts["dept_reviewer"]),
                             lambda path: get_json(api + path, token), spill["id"])
        staff = Browser(base, *accounts["staff"])
        assert staff.home == "/me"
        assert "消防安全培训" in staff.get("/me")  # yesterday's attendance
        # The survey board has data; the contest next door ran to its final ranking.
        output = (tmp_path / "demo.out").read_text()
        assert f"{base}/surveys/" in output and f"{base}/events/{CONTEST}/screen" in output
        check_survey(lambda path: get_json(api + path, token), office)
        check_contest(lambda path: get_json(api + path, token), office)
        # The lecture's story is untouched by the contest: its early leavers are still
        # partial there, and nobody's check-in moved to the other event.
        lecture = wait_for(checked_in, message="the lecture's attendance")
        assert {r["staff_id"] for r in lecture if r["status"] == "partial"} >= {"D005", "D013"}
        assert all(r["node"] == "hall-a-1" for r in lecture)
        check_year(lambda path: get_json(api + path, token), office,
                   tmp_path / "demo" / "hub.db")
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(30)
        log.close()
    # Every process is gone: the ports are free again.
    for port in (web, portal, broker, contest):
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/") is None, timeout=10,
                 message=f"port {port} to close")
    output = (tmp_path / "demo.out").read_text()
    assert "Stopping" in output
    assert "office / rounds-office-demo" in output  # the printed demo credentials
    assert "branch-1 / rounds-branch-demo" in output and "committee / " in output


def check_year(api, office, hub_db) -> None:
    """Issue 15's parts have data: assessment items with progress, tomorrow's
    training full with a waiting list, record entries at each review level,
    the drafted summary of yesterday's training."""
    year = datetime.now(timezone.utc).year
    overview = api(f"/assessment?year={year}")
    assert {i["id"] for i in overview["items"]} == {"training", "sessions", "volunteer", "deeds"}
    assert overview["departments"] and overview["behind"]
    with sqlite3.connect(hub_db) as db:
        states = dict(db.execute("SELECT state, count(*) FROM registrations "
                                 "WHERE event_id = 'training-first-aid' GROUP BY 1"))
        levels = {level for (level,) in db.execute(
            "SELECT level FROM record_entries WHERE state = 'pending'")}
        finals = {s for (s,) in db.execute("SELECT state FROM record_entries")}
    assert states == {"registered": 4, "waiting": 2}
    assert levels >= {0, 1, 2} and finals >= {"approved", "rejected", "returned"}
    summary = office.get("/events/training-fire-safety/summary")
    assert "消防安全培训" in summary and "office" in summary
