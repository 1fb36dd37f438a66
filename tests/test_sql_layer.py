"""hub.sql: one connection API over SQLite and PostgreSQL (issue 16). Every
test runs on both backends (SQLite in tmp_path, PostgreSQL from ``pg_dsn``),
except the placeholder translator's (a pure function) and the PostgreSQL
lock demonstration."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.db import open_db
from hub.sql import IntegrityError, TransactionAborted, connect
from hub.sql.connection import translate

from .support import wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "hub.db"
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
def conn(target):
    with connect(target) as c:
        c.execute("CREATE TABLE t (id TEXT PRIMARY KEY, note TEXT)")
        yield c


def ids(conn, table="t"):
    return [row[0] for row in conn.execute(f"SELECT id FROM {table} ORDER BY id")]


def test_translate_leaves_literals_casts_and_comments_alone():
    assert translate("SELECT ?, '?', ':x', \"a?b\", x::int -- ? :y\nFROM t WHERE n LIKE 'a%'") \
        == ("SELECT %s, '?', ':x', \"a?b\", x::int -- ? :y\nFROM t WHERE n LIKE 'a%%'", "qmark")
    assert translate("SELECT :a, 'it''s :b', :a /* :c */ % 2") \
        == ("SELECT %(a)s, 'it''s :b', %(a)s /* :c */ %% 2", "named")
    assert translate("SELECT 1") == ("SELECT 1", None)
    assert translate("SELECT ?") is translate("SELECT ?")  # cached per text
    with pytest.raises(ValueError):
        translate("SELECT ?, :a")


def test_connection_settings_and_autocommit(target):
    with connect(target) as a, connect(target) as b:
        assert a.backend == a.dialect.name == (
            "postgresql" if str(target).startswith("postgresql://") else "sqlite")
        if a.backend == "sqlite":
            assert a.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert a.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
            assert a.execute("PRAGMA busy_timeout").fetchone() == (10000,)
        a.execute("CREATE TABLE t (id TEXT PRIMARY KEY)")
        a.execute("INSERT INTO t VALUES (?)", ("x",))
        assert not a.in_transaction
        assert ids(b) == ["x"]  # a lone statement committed at once


def test_placeholders_both_styles(conn):
    conn.executemany("INSERT INTO t (id, note) VALUES (?, ?)",
                     [("apple", "a"), ("a%b", "?"), ("banana", ":x"), ("?", "q")])
    row = conn.execute("SELECT ?, '?', ':x', 'it''s ?', ? || '%'", ("v", "w")).fetchone()
    assert row == ("v", "?", ":x", "it's ?", "w%")
    row = conn.execute("SELECT :a, ':a', :b, :a", {"a": "1", "b": "x"}).fetchone()
    assert row == ("1", ":a", "x", "1")
    assert [r[0] for r in conn.execute("SELECT id FROM t WHERE id LIKE 'a%' ORDER BY id")] \
        == ["a%b", "apple"]
    assert conn.execute("SELECT id FROM t WHERE id LIKE 'a%' AND note = ?",
                        ("?",)).fetchall() == [("a%b",)]
    assert conn.execute("SELECT id FROM t WHERE note = ':x' AND id <> :id",
                        {"id": "?"}).fetchall() == [("banana",)]
    assert conn.execute("SELECT note FROM t WHERE id = '?'").fetchone() == ("q",)
    conn.executemany("UPDATE t SET note = :note WHERE id = :id",
                     [{"id": "apple", "note": "A"}, {"id": "banana", "note": "B"}])
    assert conn.execute("SELECT note FROM t WHERE id IN (?, ?) ORDER BY id",
                        ["apple", "banana"]).fetchall() == [("A",), ("B",)]
    with pytest.raises(TypeError):
        conn.execute("SELECT :a", ("x",))
    with pytest.raises(TypeError):
        conn.execute("SELECT ?", {"a": "x"})


def test_on_conflict_do_nothing_counts(conn):
    sql = "INSERT INTO t (id, note) VALUES (?, ?) ON CONFLICT (id) DO NOTHING"
    batch = [("a", "1"), ("b", "1"), ("a", "2"), ("c", "1"), ("b", "2")]
    assert conn.executemany(sql, batch).rowcount == 3
    assert conn.executemany(sql, [("c", "3"), ("d", "3")]).rowcount == 1
    assert conn.execute(sql, ("a", "4")).rowcount == 0
    assert ids(conn) == ["a", "b", "c", "d"]
    assert conn.execute("SELECT note FROM t WHERE id = 'a'").fetchone() == ("1",)


def test_returning(conn):
    conn.execute(f"CREATE TABLE items (id {conn.dialect.serial_primary_key}, name TEXT)")
    assert conn.dialect.supports_returning
    insert = "INSERT INTO items (name) VALUES (?)" + conn.dialect.returning_id()
    first = conn.execute(insert, ("x",)).fetchone()[0]
    second = conn.execute(insert, ("y",)).fetchone()[0]
    assert second == first + 1
    assert conn.execute("DELETE FROM items WHERE id = ? RETURNING name",
                        (first,)).fetchall() == [("x",)]


def test_write_transaction_rolls_back_on_exception(conn):
    with pytest.raises(RuntimeError):
        with conn.write_transaction():
            conn.execute("INSERT INTO t (id) VALUES ('a')")
            assert conn.in_transaction
            raise RuntimeError("boom")
    assert not conn.in_transaction
    assert ids(conn) == []
    conn.execute("INSERT INTO t (id) VALUES ('x')")
    with pytest.raises(IntegrityError):  # a failing statement: all of it goes
        with conn.write_transaction():
            conn.execute("INSERT INTO t (id) VALUES ('b')")
            conn.execute("INSERT INTO t (id) VALUES ('x')")
    assert ids(conn) == ["x"]
    with conn.write_transaction():  # and the connection is usable again
        conn.execute("INSERT INTO t (id) VALUES ('c')")
    assert ids(conn) == ["c", "x"]


def test_nested_write_transaction_is_a_savepoint(conn):
    conn.execute("INSERT INTO t (id) VALUES ('dup')")
    with conn.write_transaction():
        conn.execute("INSERT INTO t (id) VALUES ('a')")
        with pytest.raises(RuntimeError):
            with conn.write_transaction():
                conn.execute("INSERT INTO t (id) VALUES ('b')")
                raise RuntimeError("inner only")
        with pytest.raises(IntegrityError):  # the portable way to absorb a failure
            with conn.write_transaction(lock="other"):
                conn.execute("INSERT INTO t (id) VALUES ('dup')")
        with conn.write_transaction():
            conn.execute("INSERT INTO t (id) VALUES ('c')")
        assert conn.in_transaction
    assert not conn.in_transaction
    assert ids(conn) == ["a", "c", "dup"]


def test_failure_caught_without_savepoint(conn):
    """The one difference left: SQLite undoes only the failed statement,
    PostgreSQL aborts the transaction (and says so instead of committing)."""
    conn.execute("INSERT INTO t (id) VALUES ('dup')")
    try:
        with conn.write_transaction():
            conn.execute("INSERT INTO t (id) VALUES ('a')")
            with pytest.raises(IntegrityError):
                conn.execute("INSERT INTO t (id) VALUES ('dup')")
    except TransactionAborted:
        assert conn.backend == "postgresql"
        assert ids(conn) == ["dup"]
    else:
        assert conn.backend == "sqlite"
        assert ids(conn) == ["a", "dup"]


def _increment(target, times, lock="counter", pause=0.0):
    with connect(target) as c:
        for _ in range(times):
            with c.write_transaction(lock):
                (n,) = c.execute("SELECT n FROM counter WHERE id = 1").fetchone()
                time.sleep(pause)  # widen the read-then-write window
                c.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))


def test_concurrent_writers_do_not_lose_updates(target):
    with connect(target) as c:
        c.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        c.execute("INSERT INTO counter VALUES (1, 0)")
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(_increment, target, 100, pause=0.0005)
                           for _ in range(2)]:
                future.result()
        assert c.execute("SELECT n FROM counter").fetchone() == (200,)


def test_postgresql_lock_is_what_prevents_lost_updates(pg_dsn):
    """Under READ COMMITTED two plain transactions lose an update (played out
    step by step, so it always happens); the advisory lock makes the second
    writer wait for the first to commit before it reads."""
    select, update = "SELECT n FROM counter", "UPDATE counter SET n = ?"
    with connect(pg_dsn) as a, connect(pg_dsn) as b, connect(pg_dsn) as c:
        a.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        a.execute("INSERT INTO counter VALUES (1, 0)")
        a.execute("BEGIN")
        b.execute("BEGIN")
        seen_a, seen_b = a.execute(select).fetchone()[0], b.execute(select).fetchone()[0]
        a.execute(update, (seen_a + 1,))
        a.execute("COMMIT")
        b.execute(update, (seen_b + 1,))
        b.execute("COMMIT")
        assert c.execute(select).fetchone() == (1,)  # two increments, one kept

        with ThreadPoolExecutor(1) as pool, a.write_transaction("counter"):
            seen_a = a.execute(select).fetchone()[0]
            worker = pool.submit(_increment, pg_dsn, 1)
            wait_for(lambda: c.execute("SELECT count(*) FROM pg_locks WHERE locktype = "
                                       "'advisory' AND NOT granted").fetchone()[0] == 1,
                     timeout=10, message="the second writer waiting for the lock")
            with c.write_transaction("another name"):  # other names do not wait
                c.execute("SELECT 1")
            a.execute(update, (seen_a + 1,))
        worker.result(timeout=10)
        assert c.execute(select).fetchone() == (3,)


def test_dialect_helpers(conn):
    d = conn.dialect
    assert conn.execute(f"SELECT {d.greatest('?', '?')}, {d.least('?', '?', '?')}",
                        (3, 7, 5, 2, 9)).fetchone() == (7, 2)
    zones = '["ward-1", "ward-2", "ward-1"]'
    rows = conn.execute(f"SELECT value FROM {d.json_rows('?')} ORDER BY value",
                        (zones,)).fetchall()
    assert rows == [("ward-1",), ("ward-1",), ("ward-2",)]
    conn.execute("CREATE TABLE events (id TEXT PRIMARY KEY, zones TEXT NOT NULL)")
    conn.executemany("INSERT INTO events VALUES (?, ?)",
                     [("e1", '["a", "b"]'), ("e2", '["b"]'), ("e3", "[]")])
    rows = conn.execute(f"SELECT e.id, z.value FROM events e, {d.json_rows('e.zones', 'z')} "
                        "WHERE z.value IN (SELECT value FROM "
                        f"{d.json_rows(':wanted')}) ORDER BY e.id, z.value",
                        {"wanted": '["b"]'}).fetchall()
    assert rows == [("e1", "b"), ("e2", "b")]


def test_sqlite_functions_the_hub_uses_answer_alike(target):
    """hub.sql.compat: on a migrated hub database, SQLite's json_each,
    json_extract, scalar min/max and sum over a comparison give the same
    answers on both backends (keys and scalar values as text)."""
    db = open_db(target)
    try:
        one = lambda sql, params=(): db.conn.execute(sql, params).fetchall()  # noqa: E731
        assert [(str(k), v) for k, v in one("SELECT key, value FROM json_each(?)",
                                            ('["a", "b", null]',))] \
            == [("0", "a"), ("1", "b"), ("2", None)]
        assert sorted(one("SELECT key, value FROM json_each(?)", ('{"x": "1", "y": "2"}',))) \
            == [("x", "1"), ("y", "2")]
        assert one("SELECT count(*) FROM staff WHERE staff_id IN "
                   "(SELECT value FROM json_each(?))", ('["nobody"]',)) == [(0,)]
        assert one("SELECT json_extract(?, '$[0]'), json_extract(?, '$.k'), "
                   "json_extract(?, '$[5]')", ('["z", 5]', '{"k": "v"}', '[1]')) \
            == [("z", "v", None)]
        assert one("SELECT max(0, min(7, ?)), max(2, 3), min(1, NULL)", (5,)) == [(5, 3, None)]
        db.conn.execute("CREATE TABLE n (x INTEGER)")
        db.conn.executemany("INSERT INTO n (x) VALUES (?)", [(1,), (2,), (3,)])
        assert one("SELECT sum(x > 1), coalesce(sum(x > 5), 0), max(x), min(x) FROM n") \
            == [(2, 0, 3, 1)]
    finally:
        db.close()
