"""The README's first command: `make demo` starts, the dashboard shows
attendance from the scripted phones, and Ctrl-C stops every process."""

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request

from .conftest import ROOT, free_port, wait_for


def get_json(url, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=3) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, ValueError):
        return None


def test_make_demo_shows_attendance_and_stops_on_ctrl_c(tmp_path):
    web, portal, broker = free_port(), free_port(), free_port()
    args = (f"--data-dir {tmp_path / 'demo'} --web-port {web} --portal-port {portal} "
            f"--broker-port {broker} --phones 6")
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
        assert {r["method"] for r in rows} <= {"portal", "presence"}
        # Bound phones that never open the portal are checked in by presence alone,
        # and the two who leave early end up partial with the minutes they missed.
        assert any(r["method"] == "presence" for r in rows)
        left_early = wait_for(
            lambda: [r for r in checked_in() if r["status"] == "partial"
                     and (r["early_leave_minutes"] or 0) > 5], timeout=120,
            message="early leavers shown as partial")
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
        assert "Hand hygiene and infection control" in html and rows[0]["name"] in html
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(30)
        log.close()
    # Every process is gone: the ports are free again.
    for port in (web, portal, broker):
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/") is None, timeout=10,
                 message=f"port {port} to close")
    output = (tmp_path / "demo.out").read_text()
    assert "Stopping" in output
    assert "office / rounds-office-demo" in output  # the printed demo credentials
