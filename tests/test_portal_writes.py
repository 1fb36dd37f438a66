"""The portal's group commit (edge/portal/writes.py) on a real node database:
writes queued while another is being committed share one transaction, each
gets its own result or error, a failed write is rolled back alone, and a
write that need not survive a power cut is committed without an fsync."""

import fcntl
import os
import sqlite3
import threading
import time

import pytest
from flask import Flask

from edge.outbox import Outbox
from edge.portal import writes

WRITERS = 6


@pytest.fixture
def app(tmp_path):
    app = Flask(__name__)
    app.config["NODE_DB"] = str(tmp_path / "node.db")
    Outbox(app.config["NODE_DB"]).close()  # migrated
    writes.init_app(app)
    return app


def statements(outbox: Outbox) -> list[str]:
    seen = []
    outbox.conn.set_trace_callback(seen.append)
    return seen


def insert(key, fail=False):
    def fn(writer: Outbox):
        writer.conn.execute("INSERT INTO kv (key, value, etag) VALUES (?, 'v', 'e')", (key,))
        if fail:
            raise ValueError(f"{key} refused")
        return key
    return fn


def run_writers(app, fns, durable=None):
    """Each fn from its own thread (own connection; ``durable[i]``, default
    True), while the test holds the portal's lock file, so that all but the
    first queue behind it; returns (results or exceptions by index, SQL each
    connection ran)."""
    durable = durable or [True] * len(fns)
    outcomes, traces = {}, {}
    lock = os.open(f"{app.config['NODE_DB']}.write-lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)

    def writer(i, fn):
        outbox = Outbox(app.config["NODE_DB"])
        traces[i] = statements(outbox)
        with app.app_context():
            try:
                outcomes[i] = writes.write(outbox, fn, durable=durable[i])
            except (ValueError, sqlite3.Error) as exc:
                outcomes[i] = exc
            finally:
                outbox.close()

    threads = [threading.Thread(target=writer, args=(i, fn)) for i, fn in enumerate(fns)]
    queue = app.extensions["rounds_portal_writes"]
    threads[0].start()  # takes the turn, then waits on the lock file
    wait_until(lambda: queue._turn.locked() and not queue._queue)
    for t in threads[1:]:
        t.start()
    wait_until(lambda: len(queue._queue) == len(fns) - 1)
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    for t in threads:
        t.join(10)
    return outcomes, traces


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def stored_keys(app) -> set[str]:
    outbox = Outbox(app.config["NODE_DB"])
    try:
        return {k for (k,) in outbox.conn.execute("SELECT key FROM kv")}
    finally:
        outbox.close()


def test_queued_writes_share_one_commit_and_each_gets_its_result(app):
    keys = [f"k{i}" for i in range(WRITERS)]
    outcomes, traces = run_writers(app, [insert(k) for k in keys])
    assert outcomes == dict(enumerate(keys))
    assert stored_keys(app) == set(keys)
    commits = sum(sql.count("COMMIT") for trace in traces.values() for sql in trace)
    # The first write alone (it had the turn before the others queued), then
    # the others in one transaction.
    assert commits == 2


def test_a_failing_write_is_rolled_back_alone_and_raised_in_its_own_request(app):
    fns = [insert(f"k{i}", fail=(i == 3)) for i in range(WRITERS)]
    outcomes, _ = run_writers(app, fns)
    assert isinstance(outcomes[3], ValueError) and str(outcomes[3]) == "k3 refused"
    assert all(outcomes[i] == f"k{i}" for i in range(WRITERS) if i != 3)
    assert stored_keys(app) == {f"k{i}" for i in range(WRITERS) if i != 3}


def test_a_write_that_ends_the_transaction_fails_its_whole_group(app):
    """As SQLite does on a full disk: the transaction is gone, so nothing of
    the group was saved, and every request of the group gets the error."""
    def full_disk(writer: Outbox):
        writer.conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")
    fns = [insert(f"k{i}") for i in range(WRITERS)]
    fns[3] = full_disk
    outcomes, _ = run_writers(app, fns)
    assert outcomes[0] == "k0"  # committed alone before the others queued
    for i in range(1, WRITERS):
        assert isinstance(outcomes[i], sqlite3.OperationalError), outcomes[i]
        assert "disk is full" in str(outcomes[i])
    assert outcomes[1] is not outcomes[2]  # each request raises its own copy
    assert stored_keys(app) == {"k0"}


def test_a_lone_failing_write_saves_nothing(app):
    with app.app_context():
        outbox = Outbox(app.config["NODE_DB"])
        try:
            with pytest.raises(ValueError):
                writes.write(outbox, insert("alone", fail=True))
            assert writes.write(outbox, insert("next")) == "next"
        finally:
            outbox.close()
    assert stored_keys(app) == {"next"}


def test_a_release_is_committed_without_fsync_but_a_check_in_is_not(app):
    with app.app_context():
        outbox = Outbox(app.config["NODE_DB"])
        try:
            trace = statements(outbox)
            writes.write(outbox, insert("release"), durable=False)
            assert trace[0] == "PRAGMA synchronous = NORMAL"
            assert trace[-1] == "PRAGMA synchronous = FULL"
            assert outbox.conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
            trace.clear()
            writes.write(outbox, insert("checkin"))
            assert not any("synchronous" in sql for sql in trace)
        finally:
            outbox.close()


def test_a_group_with_one_durable_write_is_fsynced(app):
    durable = [False] * WRITERS
    durable[4] = True  # queued with the others behind the first
    outcomes, traces = run_writers(app, [insert(f"k{i}") for i in range(WRITERS)], durable)
    assert len(outcomes) == WRITERS
    normal = [sql for trace in traces.values() for sql in trace
              if sql == "PRAGMA synchronous = NORMAL"]
    assert normal and traces[0][0] == "PRAGMA synchronous = NORMAL"  # the first, alone
    assert len(normal) == 1  # the group of the other five was fsynced
