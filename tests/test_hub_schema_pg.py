"""One schema, one migration history (issue 16): the hub's migrations give a
SQLite file and a real PostgreSQL database the same tables, columns and
indexes, keep the audit log append-only on both, and apply once."""

import sqlite3

import psycopg
import pytest

from hub import db as hub_db
from hub.sql import connect
from hub.sql import migrate

SQLITE_OWN = {"sqlite_sequence", "_sqlite_migrations"}


def sqlite_schema(path):
    db = hub_db.open_db(path)
    try:
        tables = [t for (t,) in db.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if t not in SQLITE_OWN]
        columns = {t: [row[1] for row in db.conn.execute(f"PRAGMA table_info({t})")]
                   for t in tables}
        indexes = {name for (name, table) in db.conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            if table not in SQLITE_OWN}
        return columns, indexes
    finally:
        db.close()


def postgres_schema(conn):
    tables = [t for (t,) in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "ORDER BY table_name") if t != migrate.MIGRATIONS_TABLE]
    columns = {t: [c for (c,) in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = ? ORDER BY ordinal_position", (t,))] for t in tables}
    constraints = {c for (c,) in conn.execute("SELECT conname FROM pg_constraint")}
    indexes = {i for (i,) in conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'") if i not in constraints}
    return columns, indexes


@pytest.fixture
def pg(pg_dsn):
    conn = connect(pg_dsn)
    yield conn
    conn.close()


def test_both_engines_get_the_same_tables_columns_and_indexes(tmp_path, pg):
    applied = migrate.apply(pg, hub_db.HISTORY)
    assert applied == [fn.__name__ for fn in hub_db.HISTORY]
    assert applied[0] == "m001_initial" and len(applied) >= 16
    sqlite_columns, sqlite_indexes = sqlite_schema(tmp_path / "hub.db")
    pg_columns, pg_indexes = postgres_schema(pg)
    assert pg_columns == sqlite_columns
    assert pg_indexes == sqlite_indexes
    assert "audit_log" in pg_columns and "branch" in pg_columns["accounts"]


def test_postgresql_gets_64_bit_integers_and_doubles(pg):
    migrate.apply(pg, hub_db.HISTORY)
    types = dict(pg.execute(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public'").fetchall())
    assert types["nodes.disk_free"] == "bigint"          # bytes: beyond 2^31
    assert types["zones.lat"] == "double precision"       # not PostgreSQL's 32-bit real
    assert types["quarantine.payload"] == "bytea"
    assert types["tickets.id"] == "bigint"
    ticket = pg.execute(
        "INSERT INTO category_settings (category, label, due_hours) VALUES ('x', 'X', 1) "
        "RETURNING category").fetchone()
    assert ticket == ("x",)
    # The seeds of m003 are there, as on SQLite.
    assert pg.execute("SELECT count(*) FROM routing_rules").fetchone()[0] == 3


def test_migrations_apply_once(pg):
    assert migrate.apply(pg, hub_db.HISTORY)
    assert migrate.apply(pg, hub_db.HISTORY) == []
    assert migrate.applied(pg) == [fn.__name__ for fn in hub_db.HISTORY]


def test_a_new_migration_is_applied_to_an_existing_database(pg):
    migrate.apply(pg, hub_db.HISTORY[:-1])
    assert migrate.apply(pg, hub_db.HISTORY) == [hub_db.HISTORY[-1].__name__]


def test_the_audit_log_is_append_only_on_both(tmp_path, pg):
    migrate.apply(pg, hub_db.HISTORY)
    sqlite_db = hub_db.open_db(tmp_path / "hub.db")
    row = "INSERT INTO audit_log (at, who, action) VALUES ('2026-12-07T00:00:00Z', 'a', 'x')"
    try:
        for conn, error in ((sqlite_db.conn, sqlite3.IntegrityError),
                            (pg, psycopg.errors.RaiseException)):
            conn.execute(row)
            for statement in ("UPDATE audit_log SET who = 'b'", "DELETE FROM audit_log"):
                with pytest.raises(error, match="append-only"):
                    conn.execute(statement)
            assert conn.execute("SELECT who FROM audit_log").fetchall() == [("a",)]
    finally:
        sqlite_db.close()
