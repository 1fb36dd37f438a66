"""The PostgreSQL fixture (tests/pg.py) the hub's PostgreSQL backend will be
tested against (issue 16): a real server, durable settings, one database per
test, and nothing left running afterwards."""

import os
import socket

import psycopg
import pytest

from .pg import PostgresCluster, _pid_alive, port_is_free, require_bindir


def test_cluster_is_durable_and_loopback_only(pg_cluster, pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'full_page_writes', 'listen_addresses', "
            "'server_encoding', 'lc_collate', 'unix_socket_directories')").fetchall())
    assert settings == {
        "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
        "listen_addresses": "127.0.0.1", "server_encoding": "UTF8", "lc_collate": "C",
        "unix_socket_directories": str(pg_cluster.directory),
    }
    assert pg_dsn.startswith(f"postgresql://rounds@127.0.0.1:{pg_cluster.port}/")
    hba = (pg_cluster.data / "pg_hba.conf").read_text().split("\n")
    rules = [line.split() for line in hba if line.strip() and not line.startswith("#")]
    assert rules == [["local", "all", "all", "trust"],
                     ["host", "all", "all", "127.0.0.1/32", "trust"]]
    if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as the postgres user
        import pwd
        assert pg_cluster.data.stat().st_uid == pwd.getpwnam("postgres").pw_uid


def test_batch_insert_on_conflict_do_nothing(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE checkins (id TEXT PRIMARY KEY, staff_id TEXT NOT NULL)")
        conn.execute("INSERT INTO checkins VALUES ('a', 'S1')")
        conn.commit()
        # One transaction: a batch that repeats a stored id and one of its own.
        batch = [("a", "S9"), ("b", "S2"), ("c", "S3"), ("b", "S9"), ("d", "S4")]
        with conn.transaction():
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO checkins VALUES (%s, %s) "
                                "ON CONFLICT (id) DO NOTHING", batch, returning=False)
                assert cur.rowcount == 3
    # Committed, and seen from a new connection; the first writer of an id wins.
    with psycopg.connect(pg_dsn) as other:
        assert other.execute("SELECT id, staff_id FROM checkins ORDER BY id").fetchall() == [
            ("a", "S1"), ("b", "S2"), ("c", "S3"), ("d", "S4")]


def test_databases_are_separate(pg_cluster, pg_dsn):
    second = pg_cluster.create_database()
    try:
        assert second != pg_dsn
        with psycopg.connect(pg_dsn) as one, psycopg.connect(second) as two:
            one.execute("CREATE TABLE t (x INTEGER)")
            one.execute("INSERT INTO t VALUES (1)")
            one.commit()
            assert two.execute("SELECT to_regclass('t')").fetchone() == (None,)
    finally:
        pg_cluster.drop_database(second.rsplit("/", 1)[1])


def test_each_test_gets_a_fresh_database(pg_dsn):
    """The table the previous test made is not here."""
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('t'), to_regclass('checkins')").fetchone() \
            == (None, None)


def _cluster_gone(cluster: PostgresCluster, pids: list[int]) -> None:
    assert cluster.processes() == []
    for pid in pids:
        assert not _pid_alive(pid)
    assert port_is_free(cluster.port)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.dsn(), connect_timeout=2)


def test_nothing_left_running_after_a_failing_test(tmp_path):
    bindir = require_bindir()
    with pytest.raises(RuntimeError, match="the test failed"):
        with PostgresCluster(tmp_path / "pg", bindir=bindir) as cluster:
            # A connection left open, as a failing test leaves it.
            conn = psycopg.connect(cluster.create_database())
            conn.execute("SELECT 1")
            pids = cluster.processes()
            assert len(pids) >= 3  # postmaster, its helpers, our backend
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=2):
                pass
            raise RuntimeError("the test failed")
    conn.close()
    _cluster_gone(cluster, pids)


def test_postmaster_killed_when_pg_ctl_stop_fails(tmp_path, monkeypatch):
    bindir = require_bindir()
    with PostgresCluster(tmp_path / "pg", bindir=bindir) as cluster:
        pids = cluster.processes()
        real_run = cluster._run

        def broken_stop(tool, *args, **kwargs):
            if tool == "pg_ctl" and args[:1] == ("stop",):
                raise OSError("pg_ctl stop is broken")
            return real_run(tool, *args, **kwargs)

        monkeypatch.setattr(cluster, "_run", broken_stop)
    _cluster_gone(cluster, pids)
    # The database starts again from its files after the kill.
    monkeypatch.undo()
    with PostgresCluster(tmp_path / "pg", bindir=bindir) as again:
        with psycopg.connect(again.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    _cluster_gone(again, [])


def test_missing_postgresql_skips_unless_required(tmp_path, monkeypatch):
    from . import pg
    (tmp_path / "17" / "bin").mkdir(parents=True)  # a client-only install
    (tmp_path / "17" / "bin" / "psql").touch()
    monkeypatch.setattr(pg, "PG_ROOT", tmp_path)
    monkeypatch.delenv("ROUNDS_REQUIRE_PG", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server binaries"):
        require_bindir()
    monkeypatch.setenv("ROUNDS_REQUIRE_PG", "1")
    with pytest.raises(pytest.fail.Exception, match="ROUNDS_REQUIRE_PG is set"):
        require_bindir()
    for major in ("9.6", "13", "15"):
        for tool in ("initdb", "pg_ctl", "postgres"):
            (tmp_path / major / "bin").mkdir(parents=True, exist_ok=True)
            (tmp_path / major / "bin" / tool).touch()
    assert require_bindir() == tmp_path / "15" / "bin"
