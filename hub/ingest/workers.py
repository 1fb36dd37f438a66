"""Several ingest processes sharing the node uplinks: ``rounds-hub ingest --workers N``.

Why. One ``rounds-hub ingest`` takes every batch in turn: parse, validate,
commit, ack. Only the commit needs the database's one write lock; the rest
(JSON parsing and validation, clock fixes, photo checks, MQTT) can run in
parallel. With N workers the broker spreads the nodes' uplinks over N
processes, and each waits for the write lock only for its commit. It helps
when the ingest is busy in Python (many nodes, large batches, photos) and not
when the disk's fsync per commit is the limit (SQLite still commits one
transaction at a time). On a 2-core VM, a backlog of photos went from ~30 to
~40 a second with 2 workers (the photo's difference hash is still computed
inside the write transaction); clean record batches stayed at 25-30k records
a second with 1, 2 or 3 workers.

How it is built (the contract: DESIGN.md, MQTT contract; README, Ingest):

- An MQTT v5 shared subscription, ``$share/<group>/rounds/v1/<site>/node/+/up/#``
  (protocol.topics.shared_nodes_up): the broker hands each uplink to one
  member of the group. Mosquitto 2 picks them in turn, online or not: a
  member that is down gets its share queued in its session.
- Each worker is its own process with its own persistent session (clean
  start off, 7-day expiry) under its own client id and MQTT user. The real
  site broker takes the user name as client id (``use_username_as_clientid``),
  so two workers under one user would throw each other out: worker 1 is the
  hub user (``hub``, client id ``rounds-hub-<site>``, today's ingest), worker
  i > 1 is ``hub.<i>`` (``rounds-hub-<site>-<i>``; a dot, which no node id
  can hold, so a node never takes a worker's name). Their passwords are in
  hub.json's ``mqtt.workers`` (``rounds-provision site init --ingest-workers N``);
  their ACL lets them read the nodes' uplinks and write acks, nothing else.
- Exactly once in effect holds per message as with one worker: commit, then
  ack (to the node, then PUBACK); an id seen before changes nothing,
  whichever worker sees it. A worker killed mid-batch leaves its unacked
  messages in its session; the supervisor starts it again under the same
  client id (as systemd restarts a service) and the broker hands them over.
  A worker refused by the broker (credentials, ACL) stops them all: exit 2.
  A worker whose database failed (``DatabaseFailure``) is restarted.
- Order across workers is not kept: two batches of one node may commit in
  either order. Nothing depends on it: presence keeps the latest
  ``last_seen``, bindings go by ``bound_at``, registrations by ``taken_at``
  (hub/schedule/registration_records.py), tickets are made under the write lock by
  whichever commit comes last. A node's ``up/status`` is the exception: two
  statuses handled by two workers may land in the wrong order, and the
  node's next status (every 30 s) puts it right.
- Only worker 1 publishes the roster, configs and assessment (the downlink
  thread); the others only ingest.
- SQLite: every write in the ingest path is BEGIN IMMEDIATE
  (``hub.db.write_transaction``; ``store.write_clean`` too) with a 10 s busy
  timeout, so a worker waits for the lock instead of failing a read upgraded
  to a write. Each writer's ``Checkpointer`` runs PASSIVE checkpoints, which
  never wait; when two run at once one reports busy and tries again later.
- The group's name is kept in hub.json (``mqtt.share_group``; site init
  writes a random one) because Mosquitto 2.0's ACL file does not check
  subscriptions at all: a node that subscribes the same shared filter under
  the same group name is granted, joins the group, and the broker drops the
  share it hands that node (the node's read ACL refuses each message); it
  would come back only by the node's re-send. A node that cannot name the
  group forms a group of its own, which takes nothing from the workers
  (tests/test_ingest_workers.py checks both).
- Changing N: worker 1 leaves the subscription of the other mode (the plain
  filter when N > 1, the shared one when N == 1), and the sessions of the
  configured workers beyond N are ended at start (clean start, expiry 0), so
  the broker stops queuing a share for a worker that will not come back.
"""

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from protocol import topics
from runtime.daemon import die_with_parent, stop_on_signals
from runtime.mqttclient import make_client, session_properties
from runtime.settings import ConfigError, MqttSettings

from hub.ingest.subscriber import DatabaseFailure, Ingest, IngestFatal

log = logging.getLogger(__name__)

# Exit codes of a worker process: refused for good (as `rounds-hub ingest`
# has always exited), and a database failure, after which it is restarted.
REFUSED = 2
DATABASE_FAILED = 3
_GROUP = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


@dataclass(frozen=True)
class Worker:
    """What worker ``index`` of ``count`` connects as and subscribes to."""

    index: int
    count: int
    client_id: str
    mqtt: MqttSettings
    subscription: str
    unsubscribe: tuple[str, ...]

    @property
    def downlink(self) -> bool:
        return self.index == 1


def share_group(mqtt: dict) -> str:
    """The shared subscription's group: hub.json's ``mqtt.share_group``, else
    the default (fine for a test broker; a site's is secret, see above)."""
    group = mqtt.get("share_group", topics.INGEST_GROUP)
    if not isinstance(group, str) or not _GROUP.match(group):
        raise ConfigError("mqtt.share_group must be 1-64 letters, digits, - or _")
    return group


def _extra_credentials(mqtt: dict) -> list[dict]:
    extra = mqtt.get("workers", [])
    if not isinstance(extra, list) or not all(
            isinstance(w, dict) and isinstance(w.get("username"), str) and w["username"]
            and isinstance(w.get("password"), str) for w in extra):
        raise ConfigError('mqtt.workers must be a list of {"username": ..., "password": ...}')
    return extra


def _settings(mqtt: dict, credentials: dict | None) -> MqttSettings:
    if credentials is None:
        return MqttSettings.from_dict(mqtt)
    return MqttSettings.from_dict({**mqtt, "username": credentials["username"],
                                   "password": credentials["password"]})


def client_id(site: str, index: int) -> str:
    return f"rounds-hub-{site}" if index == 1 else f"rounds-hub-{site}-{index}"


def plan(site: str, mqtt: dict, count: int) -> list[Worker]:
    """Workers 1..``count`` for hub.json's ``mqtt`` section; ConfigError
    when it lacks credentials for one of them. ``count`` 1 is today's
    ingest: the plain subscription (leaving the shared one only when the
    config has workers, i.e. the site may have run several)."""
    extra = _extra_credentials(mqtt)
    if count - 1 > len(extra):
        raise ConfigError(
            f"--workers {count} needs MQTT credentials for {count - 1} more worker(s), and "
            f"mqtt.workers in the hub config has {len(extra)} (rounds-provision site init "
            f"--ingest-workers {count} writes them)")
    plain = topics.all_nodes_up(site)
    shared = topics.shared_nodes_up(site, share_group(mqtt))
    if count == 1:
        return [Worker(1, 1, client_id(site, 1), _settings(mqtt, None), plain,
                       (shared,) if extra or "share_group" in mqtt else ())]
    return [Worker(i, count, client_id(site, i), _settings(mqtt, None if i == 1 else extra[i - 2]),
                   shared, (plain,) if i == 1 else ())
            for i in range(1, count + 1)]


def surplus(site: str, mqtt: dict, count: int) -> list[tuple[str, MqttSettings]]:
    """(client id, settings) of the configured workers beyond ``count``."""
    extra = _extra_credentials(mqtt)
    return [(client_id(site, i), _settings(mqtt, extra[i - 2]))
            for i in range(max(count, 1) + 1, len(extra) + 2)]


def run(config: dict, config_path, count: int, index: int | None = None, *,
        verbose: bool = False) -> int:
    """``rounds-hub ingest [--workers N] [--worker I]``; answers the exit code.
    One worker runs here in the foreground; several run under a
    ``Supervisor``, each as ``--worker I``. ConfigError: the config lacks a
    worker's credentials."""
    workers = plan(config["site"], config["mqtt"], count)
    if index is None:
        retire(surplus(config["site"], config["mqtt"], count))
        if count > 1:
            supervisor = Supervisor(worker_argv(config_path, count, verbose), count)
            stop_on_signals(supervisor.stop)
            return supervisor.run()
    else:
        label_logs(index)
    ingest = make_ingest(config, workers[(index or 1) - 1])
    stop_on_signals(ingest.stop)
    try:
        ingest.run()
    except IngestFatal as exc:
        print(f"rounds-hub ingest: {exc}", file=sys.stderr)
        if index is not None and isinstance(exc, DatabaseFailure):
            return DATABASE_FAILED
        return REFUSED
    return 0


def make_ingest(config: dict, worker: Worker) -> Ingest:
    """The ``Ingest`` of ``worker`` for the loaded hub config."""
    return Ingest(site=config["site"], db_path=config["db"], mqtt=worker.mqtt,
                  photos_dir=config.get("photos_dir"),
                  timezone=config.get("timezone", "Asia/Shanghai"),
                  review_days=config["review"]["days_per_level"], client_id=worker.client_id,
                  subscription=worker.subscription, unsubscribe=worker.unsubscribe,
                  downlink=worker.downlink)


def retire(sessions: list[tuple[str, MqttSettings]], timeout: float = 5.0) -> None:
    """End the broker sessions of workers that no longer run: connect with
    clean start and session expiry 0, then leave. Without it the broker keeps
    their shared subscription for the session's 7 days and queues their
    share there, reaching the hub only when each node sends it again. A
    session that cannot be reached is left (logged), not fatal."""
    for cid, settings in sessions:
        answered = threading.Event()
        outcome = []
        client = make_client(cid, settings)
        client.on_connect = lambda c, u, f, rc, p: (outcome.append(rc), answered.set())
        try:
            client.connect(settings.host, settings.port, keepalive=10, clean_start=True,
                           properties=session_properties(0))
        except OSError as exc:
            log.warning("could not end the session of %s: %s", cid, exc)
            continue
        client.loop_start()
        try:
            if answered.wait(timeout) and not outcome[0].is_failure:
                log.info("ended the session of %s (a worker no longer run)", cid)
                client.disconnect()
            else:
                log.warning("could not end the session of %s: %s", cid,
                            outcome[0] if outcome else "no answer")
        finally:
            client.loop_stop()


def label_logs(index: int) -> None:
    """Name the worker in every line it logs (the workers share one log)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s [worker {index}] %(name)s %(levelname)s %(message)s"))


def worker_argv(config_path, count: int, verbose: bool) -> Callable[[int], list[str]]:
    """The command line of worker ``i`` of ``count``: ``rounds-hub ingest``
    itself with ``--worker i``."""
    base = [sys.executable, "-m", "hub.cli", "--config", os.path.abspath(config_path),
            *(["-v"] if verbose else [])]
    return lambda i: [*base, "ingest", "--workers", str(count), "--worker", str(i)]


def _ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with {code}"


class Supervisor:
    """Runs workers 1..``count`` as child processes and keeps them running.

    SIGTERM/SIGINT (``stop``) are passed on to every worker, which stops
    after the message in hand; a worker that ends otherwise is started again
    after ``restart_delay`` seconds, doubled (up to ``max_delay``) while it
    keeps dying within ``stable`` seconds of its start. A worker that exits
    ``REFUSED`` stops them all, and ``run`` answers ``REFUSED``. Workers get
    SIGTERM if the supervisor itself dies (PR_SET_PDEATHSIG), so a new
    supervisor never meets an old worker holding its client id.
    """

    def __init__(self, argv: Callable[[int], list[str]], count: int, *,
                 restart_delay: float = 1.0, max_delay: float = 30.0, stable: float = 60.0,
                 stop_timeout: float = 30.0):
        self.argv, self.count = argv, count
        self.restart_delay, self.max_delay, self.stable = restart_delay, max_delay, stable
        self.stop_timeout = stop_timeout
        self.procs: dict[int, subprocess.Popen] = {}
        self._started: dict[int, float] = {}
        self._delay: dict[int, float] = {}
        self._due: dict[int, float] = {}  # worker -> when to start it again
        # A plain flag, not an Event: ``stop`` runs in a signal handler, which
        # may interrupt this thread inside Event.wait holding the Event's lock.
        self._stopping = False

    def run(self) -> int:
        """Supervise until ``stop``; 0, or ``REFUSED`` when a worker was."""
        for index in range(1, self.count + 1):
            self._start(index)
        code = 0
        while not self._stopping:
            for index, proc in list(self.procs.items()):
                returncode = proc.poll()
                if returncode is None or self._stopping:
                    continue
                del self.procs[index]
                if returncode == REFUSED:
                    log.error("worker %d was refused (see its log); stopping every worker",
                              index)
                    code = REFUSED
                    self._stopping = True
                    break
                delay = self._next_delay(index)
                log.warning("worker %d (pid %d) %s; starting it again in %.0f s",
                            index, proc.pid, _ended(returncode), delay)
                self._due[index] = time.monotonic() + delay
            for index, due in list(self._due.items()):
                if time.monotonic() >= due and not self._stopping:
                    del self._due[index]
                    self._start(index)
            time.sleep(0.1)
        self._stop_all()
        return code

    def stop(self) -> None:
        """Stop every worker and then ``run`` (safe in a signal handler)."""
        self._stopping = True
        self._signal_all(signal.SIGTERM)

    def _start(self, index: int) -> None:
        # Started from the thread that runs ``run`` (the main one), which
        # lives as long as the workers should (die_with_parent's condition).
        proc = subprocess.Popen(self.argv(index), preexec_fn=die_with_parent(signal.SIGTERM))
        self.procs[index], self._started[index] = proc, time.monotonic()
        log.info("worker %d started (pid %d)", index, proc.pid)

    def _next_delay(self, index: int) -> float:
        ran = time.monotonic() - self._started[index]
        previous = self._delay.get(index)
        delay = (self.restart_delay if previous is None or ran >= self.stable
                 else min(previous * 2, self.max_delay))
        self._delay[index] = delay
        return delay

    def _signal_all(self, sig: int) -> None:
        for proc in list(self.procs.values()):
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:  # ended meanwhile
                    pass

    def _stop_all(self) -> None:
        self._signal_all(signal.SIGTERM)  # again: one may have started since stop()
        deadline = time.monotonic() + self.stop_timeout
        for index, proc in list(self.procs.items()):
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in %.0f s; killing it", index,
                            self.stop_timeout)
                proc.kill()
                proc.wait()
        self.procs.clear()
