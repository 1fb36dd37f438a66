"""hostapd's control interface, driven by the stand-in peer (a real unix
datagram socket speaking hostapd's protocol): events and the station list
-> sightings and departures -> intervals; and `rounds-edge presence` with
hostapd only (a ward node's shape, no sniffing)."""

import json
import subprocess
import sys
import threading
import time

import pytest

from edge.outbox import Outbox
from edge.presence.hostapd import (
    KIND_CONNECTED, KIND_STATION, Gone, HostapdClient, HostapdListener, parse_event,
    parse_station,
)
from edge.presence.hostapd_peer import HostapdPeer
from edge.presence.parse import Sighting
from edge.presence.tracker import Tracker

from .netns import wait_until
from .test_presence_tracker import BOUND, SECRET, UNBOUND, setup_db

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
A, B, C = "02:11:22:33:44:01", "02:11:22:33:44:02", "02:11:22:33:44:03"


@pytest.fixture
def peer(tmp_path):
    with HostapdPeer(tmp_path / "hostapd" / "wlan0") as p:
        yield p


class Listening:
    """A HostapdListener in a thread, collecting what it emits."""

    def __init__(self, path, **kwargs):
        self.events: list = []
        self.stop = threading.Event()
        self.listener = HostapdListener(str(path), self.events.append, **kwargs)
        self.thread = threading.Thread(target=self.listener.run, args=(self.stop,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def wait(self, predicate, what, timeout=5):
        return wait_until(lambda: [e for e in list(self.events) if predicate(e)], timeout,
                          0.02, what)


def test_the_client_speaks_hostapds_protocol(peer):
    peer.connect(A, inactive_msec=1200)
    peer.connect(B, inactive_msec=250_000)
    client = HostapdClient(peer.path).connect()
    try:
        assert client.request("PING") == "PONG\n"
        client.attach()
        assert client.stations() == [(A, 1200), (B, 250_000)]
        peer.disconnect(A)
        peer.disconnect(B)
        assert client.stations() == []
        assert client.request("STA-NEXT 02:00:00:00:00:99").strip() == "FAIL"
    finally:
        client.close()
    assert peer.commands[:3] == ["PING", "PING", "ATTACH"]
    assert "STA-FIRST" in peer.commands and f"STA-NEXT {A}" in peer.commands


def test_events_that_arrive_during_a_request_are_kept(peer):
    client = HostapdClient(peer.path).connect()
    try:
        client.attach()
        peer.connect(A)  # pushed now: it is in the socket before the reply to PING
        assert client.request("PING") == "PONG\n"
        assert parse_event(client.receive(1.0)) == ("AP-STA-CONNECTED", A)
        assert client.receive(0.1) is None
    finally:
        client.close()


def test_parsing_replies_and_events():
    assert parse_event("<3>AP-STA-CONNECTED 02:11:22:33:44:01") == ("AP-STA-CONNECTED", A)
    assert parse_event("<3>AP-STA-DISCONNECTED 02:11:22:33:44:01 extra") == (
        "AP-STA-DISCONNECTED", A)
    assert parse_event("<3>CTRL-EVENT-EAP-STARTED 02:11:22:33:44:01") is None
    assert parse_event("<3>AP-STA-CONNECTED not-a-mac") is None
    assert parse_station("") is None and parse_station("FAIL\n") is None
    assert parse_station(f"{A}\nflags=[AUTH]\ninactive_msec=77\n") == (A, 77)
    assert parse_station(f"{A}\nflags=[AUTH]\n") == (A, None)
    assert parse_station("garbage\ninactive_msec=1\n") is None


def test_connect_disconnect_and_station_polls_become_sightings(peer):
    peer.connect(C, inactive_msec=400_000)  # associated, but silent longer than away
    with Listening(peer.path, away_after=300, poll=0.3) as seen:
        wait_until(lambda: seen.listener.connected, 5, what="the listener to attach")
        before = time.time()
        peer.connect(A)
        [connected] = seen.wait(lambda e: isinstance(e, Sighting) and e.kind == KIND_CONNECTED,
                                "AP-STA-CONNECTED")
        assert connected.mac == A and before - 1 <= connected.ts <= time.time()

        peer.set_inactive(A, 12_000)
        # A poll already under way may still answer the old inactivity: read
        # the second poll made after the change.
        after = len(seen.events)

        def polls():
            return [e for e in list(seen.events)[after:] if isinstance(e, Sighting)
                    and e.kind == KIND_STATION and e.mac == A]

        polled = wait_until(lambda: polls() if len(polls()) >= 2 else None, 5, 0.02,
                            "two station polls after the change")
        assert abs((time.time() - polled[-1].ts) - 12) < 2, "seen now minus inactive_msec"

        peer.disconnect(A)
        [gone] = seen.wait(lambda e: isinstance(e, Gone), "AP-STA-DISCONNECTED")
        assert gone.mac == A
        time.sleep(0.5)
    assert not [e for e in seen.events if e.mac == C], "inactive > away_after: no sighting"


def test_the_listener_reattaches_after_hostapd_restarts(tmp_path):
    path = tmp_path / "hostapd" / "wlan0"
    with Listening(path, poll=0.2, retry=0.1) as seen:
        with HostapdPeer(path) as first:
            wait_until(lambda: first.attached, 5, what="ATTACH")
        assert seen.thread.is_alive()
        with HostapdPeer(path) as second:  # hostapd came back (a new socket)
            wait_until(lambda: second.attached, 10, what="ATTACH again")
            second.connect(A)
            seen.wait(lambda e: isinstance(e, Sighting) and e.mac == A, "the new event")


def test_peer_events_drive_intervals_through_the_tracker(peer, tmp_path):
    """Bound phone: connect opens, disconnect closes (same id). Unbound: nothing
    but the occupancy count."""
    setup_db(tmp_path / "node.db")
    outbox = Outbox(tmp_path / "node.db")
    clock = {"now": time.time() // 60 * 60}
    tracker = Tracker(outbox, SECRET, "hall-a", clock=lambda: clock["now"])
    with Listening(peer.path, poll=0.2, clock=lambda: clock["now"]) as seen:
        wait_until(lambda: seen.listener.connected, 5, what="the listener to attach")
        peer.connect(BOUND)
        peer.connect(UNBOUND[0])
        seen.wait(lambda e: e.mac == UNBOUND[0], "both connects")
        clock["now"] += 20
        peer.disconnect(BOUND)
        seen.wait(lambda e: isinstance(e, Gone), "the disconnect")
    for event in seen.events:
        tracker.handle(event)
    clock["now"] += 60
    tracker.tick()
    records = [i.record for i in outbox.pending(100)]
    presence = [r for r in records if r["type"] == "presence"]
    assert len(presence) == 1 and presence[0]["closed"] is True
    assert presence[0]["staff_id"] == "D001"
    assert presence[0]["last_seen"] > presence[0]["first_seen"]
    occupancy = [r for r in records if r["type"] == "occupancy"]
    assert [r["devices"] for r in occupancy] == [2]
    outbox.close()


def test_rounds_edge_presence_with_hostapd_only(peer, tmp_path):
    """The real process on a ward node's shape without sniffing: hostapd's
    events alone make and end the interval; SIGTERM stops it cleanly."""
    db = tmp_path / "node.db"
    setup_db(db)
    config = tmp_path / "node.json"
    config.write_text(json.dumps({
        "node": "n1", "db": str(db), "site_secret": SECRET.hex(), "zone": "ward-3",
        "presence": {"sniff": False, "hostapd_ctrl": str(peer.path), "hostapd_poll": 0.5}}))
    log = tmp_path / "presence.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(config),
                                 "presence"], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_until(lambda: peer.attached or proc.poll() is not None, 15, what="ATTACH")
        assert proc.poll() is None, log.read_text()
        peer.connect(BOUND)

        def presence():
            outbox = Outbox(db)
            try:
                return [i.record for i in outbox.pending(100) if i.record["type"] == "presence"]
            finally:
                outbox.close()

        wait_until(lambda: presence(), 10, what="the interval to open")
        peer.disconnect(BOUND)
        wait_until(lambda: [r for r in presence() if r["closed"]], 10, what="it to close")
        assert len({r["id"] for r in presence()}) == 1
    finally:
        proc.terminate()
        assert proc.wait(10) == 0, log.read_text()
    assert "hostapd at" in log.read_text() and "presence stopped" in log.read_text()
