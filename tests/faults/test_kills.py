"""Kill at random points: SIGKILLs of the node's sync and portal, the hub's
ingest and Mosquitto itself, during a steady stream of check-ins, presence
intervals (open ones re-sent under the same id) and reports with photos.

A seeded random schedule picks the victim and the moment (the seed is
printed; ``ROUNDS_FAULT_SEED=<seed>`` replays the same schedule). Each
victim is restarted as its systemd unit would be: the same command, on the
same port. Afterwards, with everything drained, every record the node
accepted is at the hub exactly once, with a presence interval's final
``last_seen``; every id the hub acknowledged is stored; the outbox and the
photo spool are empty; every photo is at the hub, decodes and matches its
sha256; and no payload was quarantined (a kill never delivers half a batch).
"""

import hashlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from PIL import Image

from protocol import topics
from runtime.mqttclient import make_client

from ..scale import report, scaled
from ..support import wait_for
from .conftest import EVENT, SITE
from .stream import Stream

VICTIMS = ("sync", "portal", "portal_worker", "ingest", "mosquitto")


class AckWatch:
    """Every id the hub acknowledges to node n1 (``down/ack``), as the node
    would see it: listened to with the hub's credentials, reconnecting
    after each broker kill (acks sent while it is down are not seen)."""

    def __init__(self, broker):
        self.ids: set[str] = set()
        self.lock = threading.Lock()
        self.client = make_client("faults-ack-watch", broker.settings("hub"))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            topics.node_down(SITE, "n1", "ack"), qos=1)
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage):
        ids = json.loads(message.payload).get("ids", [])
        with self.lock:
            self.ids.update(ids)

    def close(self) -> set[str]:
        self.client.disconnect()
        self.client.loop_stop()
        return self.ids


def schedule(rng: random.Random, kills: int) -> list[str]:
    """``kills`` victims: every process in turn, in a random order each round."""
    order = []
    while len(order) < kills:
        round_ = list(VICTIMS)
        rng.shuffle(round_)
        order += round_
    return order[:kills]


def log_tail(process) -> str:
    return process.log.read_text(errors="replace")[-3000:]


def assert_running(processes: dict) -> None:
    """No process died of itself (only our SIGKILLs may stop one)."""
    for name, process in processes.items():
        assert process.alive(), f"{name} exited on its own:\n{log_tail(process)}"


def photo_problems(site, shas) -> list[str]:
    """What is wrong with the hub's copies of ``shas`` (empty when nothing)."""
    stored = dict(site.hub_rows("SELECT sha256, path FROM photos"))
    problems = []
    for sha in shas:
        if sha not in stored:
            problems.append(f"{sha[:12]}: not at the hub")
            continue
        try:
            data = open(stored[sha], "rb").read()
        except OSError as exc:
            problems.append(f"{sha[:12]}: {exc}")
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            problems.append(f"{sha[:12]}: bytes do not match the sha256")
        try:
            with Image.open(stored[sha]) as image:
                image.load()
        except OSError as exc:
            problems.append(f"{sha[:12]}: does not decode: {exc}")
    return problems


@pytest.mark.timeout(scaled(240, 900))
def test_random_sigkills_lose_nothing_and_duplicate_nothing(fault_site, broker):
    kills_wanted = scaled(10, 60)
    seed = int(os.environ.get("ROUNDS_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\n[faults_kills] seed {seed} (ROUNDS_FAULT_SEED={seed} replays this schedule)")
    rng = random.Random(seed)
    site = fault_site(phones=scaled(250, 1200))
    processes = {"ingest": site.ingest().start(), "sync": site.sync().start(),
                 "portal": site.portal().start()}
    wait_for(site.node_ready, timeout=30, message="the hub's roster and event at the node")
    wait_for(site.portal_up, timeout=30, message="the portal up")
    watch = AckWatch(broker)
    stream = Stream(site, seed).start()
    kills: Counter = Counter()
    try:
        for victim in schedule(rng, kills_wanted):
            time.sleep(rng.uniform(0.3, 1.5))  # the moment: somewhere in the stream
            assert_running(processes)
            if victim == "mosquitto":
                broker.kill()
            elif victim == "portal_worker":  # gunicorn's master starts another
                workers = wait_for(processes["portal"].children, timeout=15,
                                   message="gunicorn's workers")
                os.kill(rng.choice(workers), signal.SIGKILL)
            else:
                processes[victim].kill()
            kills[victim] += 1
            time.sleep(rng.uniform(0.0, 1.0))  # down for a moment, then restarted
            if victim == "mosquitto":
                broker.start()
            elif victim != "portal_worker":
                processes[victim].start()
        time.sleep(1.0)
        assert_running(processes)
    finally:
        tally = stream.stop()

    def drained():  # the spool's files too: the sync's sweep removes what kills left
        return site.backlog() == 0 and site.spooled() == 0 and not site.spool_files()

    wait_for(drained, timeout=scaled(90, 300), interval=0.5,
             message="the node's outbox and photo spool drained")
    assert_running(processes)
    acked = watch.close()

    # Check-ins: one per person at the hub, for everyone the portal accepted,
    # and exactly the ones the node committed (a check-in whose answer was cut
    # off by a kill is still delivered if it was committed).
    hub_checkins = site.hub_rows("SELECT id, staff_id FROM checkins WHERE event_id = ?", EVENT)
    per_person = Counter(staff for _, staff in hub_checkins)
    node_checkins = {r[0] for r in site.node_rows("SELECT record_id FROM local_checkins")}
    assert {rid for rid, _ in hub_checkins} == node_checkins
    lost_checkins = tally.checkins - set(per_person)
    dup_checkins = sum(n - 1 for n in per_person.values())

    # Reports: each accepted report once, with all its photos, and a ticket.
    hub_reports = site.hub_rows("SELECT report_id, photos FROM reports")
    per_report = Counter(rid for rid, _ in hub_reports)
    photos_of = {rid: json.loads(photos) for rid, photos in hub_reports}
    node_reports = {r[0] for r in site.node_rows("SELECT report_id FROM local_reports")}
    assert set(per_report) == node_reports
    lost_reports = set(tally.reports) - set(per_report)
    dup_reports = sum(n - 1 for n in per_report.values())
    wrong_photo_count = [rid for rid, n in tally.reports.items()
                         if rid in photos_of and len(photos_of[rid]) != n]
    all_shas = {sha for shas in photos_of.values() for sha in shas}
    bad_photos = photo_problems(site, all_shas)
    unticketed = site.hub_rows("SELECT report_id FROM reports WHERE report_id NOT IN "
                               "(SELECT report_id FROM ticket_reports)")

    # Presence: every interval with the last state the node appended.
    hub_presence = {rid: (last_seen, closed) for rid, last_seen, closed in site.hub_rows(
        "SELECT id, last_seen, closed FROM presence")}
    lost_presence = set(tally.presence) - set(hub_presence)
    stale_presence = [rid for rid, record in tally.presence.items() if rid in hub_presence
                      and hub_presence[rid] != (record["last_seen"], int(record["closed"]))]

    stored_ids = {rid for rid, _ in hub_checkins} | set(hub_presence) | {
        r[0] for r in site.hub_rows("SELECT id FROM reports")} | set(
        r[0] for r in site.hub_rows("SELECT sha256 FROM photos"))
    acked_missing = acked - stored_ids
    quarantined = site.hub_rows("SELECT reason FROM quarantine")

    sent = tally.records()
    lost = len(lost_checkins) + len(lost_reports) + len(lost_presence)
    duplicated = dup_checkins + dup_reports
    report("faults_kills", {
        "seed": seed, **{f"kills_{v}": kills[v] for v in VICTIMS},
        "kills": sum(kills.values()), "records_sent": sent, "records_stored": sent - lost,
        "lost": lost, "duplicated": duplicated,
        "checkins": len(tally.checkins), "reports": len(tally.reports),
        "presence_intervals": len(tally.presence), "presence_appends": tally.presence_appends,
        "requests_cut_off_and_retried": tally.failed_requests, "acks_seen": len(acked),
        "photos_sent": sum(tally.reports.values()), "photos_stored": len(all_shas),
        "photos_corrupt": len(bad_photos)})

    assert sum(kills.values()) == kills_wanted and set(kills) == set(VICTIMS)
    assert tally.checkins and tally.reports and tally.presence, "the stream carried nothing"
    assert lost == 0, (sorted(lost_checkins)[:5], sorted(lost_reports)[:5],
                       sorted(lost_presence)[:5])
    assert duplicated == 0
    assert stale_presence == [], f"{len(stale_presence)} intervals lack their final state"
    assert acked_missing == set(), f"{len(acked_missing)} acknowledged ids are not stored"
    assert wrong_photo_count == [] and bad_photos == [], (wrong_photo_count[:5], bad_photos[:5])
    assert len(all_shas) >= sum(tally.reports.values())
    assert unticketed == [], f"{len(unticketed)} reports are still waiting for a ticket"
    assert quarantined == []
    assert site.spool_files() == [], "files left in the node's photo spool"
