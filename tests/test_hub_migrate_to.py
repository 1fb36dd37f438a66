"""``rounds-hub db migrate-to`` (issue 16): a hub's SQLite database, filled the
way the hub fills it (ingested batches, a quarantined payload, tickets, the
audit log), copied into a real PostgreSQL database and proved equal table
by table; refused into a database with data; all or nothing."""

import json
import sys

import pytest
from click.testing import CliRunner

from hub import audit
from hub.cli.main import main
from hub.config import load_hub_config
from hub.db import open_db, write_transaction
from hub.ingest.store import ingest_batch
from hub.sql import connect, transfer
from hub.web import create_app
from protocol import topics
from protocol.records import make_envelope
from runtime.settings import ConfigError

sys.path.insert(0, "bench")
from _common import NODE, SITE, mixed_records  # noqa: E402

RECORDS = 3000


@pytest.fixture
def hub(tmp_path):
    """A hub config and a database with rows in many of its tables."""
    path = tmp_path / "hub.db"
    db = open_db(path)
    records = mixed_records(RECORDS)
    topic = topics.node_up(SITE, NODE, "batch")
    for i in range(0, RECORDS, 500):
        ingest_batch(db, topic, NODE, make_envelope(NODE, records[i:i + 500], batch=f"b{i}"))
    ingest_batch(db, topic, NODE, make_envelope(NODE, [{"type": "checkin", "id": "bad"}]))
    with write_transaction(db):
        db.conn.execute("INSERT INTO zones (zone, name, lat, lon) VALUES (?, ?, ?, ?)",
                        ("ward-3", "三病区", 31.2304167, 121.4737012))
        db.conn.execute("INSERT INTO nodes (node, zone, disk_free, backlog) VALUES (?, ?, ?, ?)",
                        (NODE, "ward-3", 5_000_000_000, 0))
        db.conn.execute("INSERT INTO staff (staff_id, name, department) VALUES (?, ?, ?)",
                        ("S0001", "张医生", None))
        audit.record(db, "cli:test", "staff.add", "S0001", {"name": "张医生"})
        audit.record(db, "cli:test", "staff.edit", "S0001")
    db.close()
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"site": SITE, "db": "hub.db"}))
    return config


def run(config, *args):
    return CliRunner().invoke(main, ["--config", str(config), "db", "migrate-to", *args])


def sqlite_counts(path) -> dict[str, int]:
    db = open_db(path)
    try:
        tables = [t for (t,) in db.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != '_sqlite_migrations'")]
        return {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        db.close()


def test_the_copy_has_every_row_and_value(hub, pg_dsn):
    result = run(hub, pg_dsn)
    assert result.exit_code == 0, result.output
    assert "Copied and verified" in result.output
    counts = sqlite_counts(hub.parent / "hub.db")
    assert counts["checkins"] + counts["presence"] + counts["occupancy"] == RECORDS
    assert counts["quarantine"] == 1 and counts["audit_log"] == 2
    with connect(pg_dsn) as pg:
        for table, n in counts.items():
            assert pg.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n, table
        assert pg.execute("SELECT name, lat, lon FROM zones").fetchone() == (
            "三病区", 31.2304167, 121.4737012)
        assert pg.execute("SELECT disk_free FROM nodes").fetchone() == (5_000_000_000,)
        payload = pg.execute("SELECT payload FROM quarantine").fetchone()[0]
        assert isinstance(payload, bytes) and json.loads(payload) == {"type": "checkin", "id": "bad"}
        # The identity goes on after the copied ids, and the log stays append-only.
        audit_id = pg.execute("INSERT INTO audit_log (at, who, action) VALUES "
                              "('2026-12-07T00:00:00Z', 'x', 'y') RETURNING id").fetchone()[0]
        assert audit_id == 3
        with pytest.raises(Exception, match="append-only"):
            pg.execute("DELETE FROM audit_log")


def test_a_database_with_data_is_refused_and_left_alone(hub, pg_dsn):
    assert run(hub, pg_dsn).exit_code == 0
    again = run(hub, pg_dsn)
    assert again.exit_code == 1
    assert "already has rows in" in again.output and "checkins" in again.output
    with connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM audit_log").fetchone() == (2,)


def test_a_failed_copy_commits_nothing(hub, pg_dsn):
    db = open_db(hub.parent / "hub.db")
    # SQLite does not enforce this foreign key; PostgreSQL refuses the row.
    db.conn.execute("INSERT INTO ticket_reports (report_id, ticket_id, staff_id, duplicate, "
                    "attached_at) VALUES ('r1', 999, 'S0001', 0, '2026-12-07T00:00:00Z')")
    db.close()
    result = run(hub, pg_dsn)
    assert result.exit_code == 1
    assert "nothing was committed" in result.output and "ticket_reports" in result.output
    with connect(pg_dsn) as pg:
        assert pg.execute("SELECT count(*) FROM checkins").fetchone() == (0,)


def test_a_copy_that_differs_is_caught(hub, pg_dsn):
    assert run(hub, pg_dsn).exit_code == 0
    source = open_db(hub.parent / "hub.db")
    try:
        with connect(pg_dsn) as pg:
            assert transfer._verify(source.conn, pg, "zones").rows == 1
            pg.execute("UPDATE zones SET lat = 31.2304168")
            with pytest.raises(transfer.TransferError, match="zones: the copy differs"):
                transfer._verify(source.conn, pg, "zones")
    finally:
        source.close()


def test_only_a_postgresql_dsn_is_taken(hub):
    result = run(hub, "/tmp/other.db")
    assert result.exit_code == 2 and "postgresql://" in result.output


def test_a_hub_config_may_name_postgresql_with_its_key_and_photos(tmp_path, pg_dsn):
    """The DSN is kept as written (not resolved as a file beside hub.json); the
    dashboard asks for what it would otherwise keep beside the database file."""
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"site": SITE, "db": pg_dsn}))
    assert load_hub_config(config)["db"] == pg_dsn
    with pytest.raises(ConfigError, match="SECRET_KEY and PHOTOS_DIR"):
        create_app({"HUB_DB": pg_dsn, "SITE": SITE})
    app = create_app({"HUB_DB": pg_dsn, "SITE": SITE, "SECRET_KEY": "k",
                      "PHOTOS_DIR": str(tmp_path / "photos"), "TESTING": True})
    assert app.test_client().get("/login").status_code == 200
    assert not any(p.name.startswith("postgresql") for p in tmp_path.rglob("*"))
