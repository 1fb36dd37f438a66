"""The hub's SQLite database (WAL, synchronous=FULL) and its migrations."""

from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from protocol.sqlite import open_database

migrations = Migrations("rounds-hub")

# Every ingested record table has the record id as primary key (how duplicates
# are absorbed), the node it came from, its node timestamp and arrival time.
_RECORD_COLUMNS = "id TEXT PRIMARY KEY, node TEXT NOT NULL, ts TEXT NOT NULL, " \
    "clock_synced INTEGER, received_at TEXT NOT NULL"


@migrations()
def m001_initial(db):
    db.executescript(
        f"""
        CREATE TABLE zones (
            zone TEXT PRIMARY KEY, name TEXT NOT NULL, campus TEXT, building TEXT,
            floor TEXT, lat REAL, lon REAL
        );
        CREATE TABLE staff (
            staff_id TEXT PRIMARY KEY, name TEXT NOT NULL, department TEXT,
            role TEXT NOT NULL DEFAULT 'staff', pin_hash TEXT
        );
        CREATE TABLE devices (
            device TEXT PRIMARY KEY, staff_id TEXT NOT NULL,
            bound_at TEXT NOT NULL, node TEXT
        );
        CREATE TABLE nodes (
            node TEXT PRIMARY KEY, zone TEXT, state TEXT,
            version TEXT, backlog INTEGER, disk_free INTEGER, clock_synced INTEGER,
            status_ts TEXT, last_seen TEXT, revoked INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE events (
            id TEXT PRIMARY KEY, title TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'lecture',
            zones TEXT NOT NULL DEFAULT '[]', start TEXT NOT NULL, "end" TEXT NOT NULL,
            credit_hours REAL NOT NULL DEFAULT 0, min_presence REAL NOT NULL DEFAULT 0.75
        );
        CREATE TABLE bindings ({_RECORD_COLUMNS}, device TEXT NOT NULL, staff_id TEXT NOT NULL);
        CREATE TABLE checkins ({_RECORD_COLUMNS}, staff_id TEXT NOT NULL, event_id TEXT,
            zone TEXT NOT NULL, method TEXT NOT NULL, device TEXT);
        CREATE INDEX checkins_event ON checkins(event_id, staff_id);
        CREATE TABLE presence ({_RECORD_COLUMNS}, device TEXT NOT NULL, staff_id TEXT,
            zone TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
            closed INTEGER NOT NULL);
        CREATE TABLE occupancy ({_RECORD_COLUMNS}, zone TEXT NOT NULL, minute TEXT NOT NULL,
            devices INTEGER NOT NULL);
        CREATE TABLE reports ({_RECORD_COLUMNS}, report_id TEXT NOT NULL, staff_id TEXT NOT NULL,
            category TEXT NOT NULL, note TEXT, zone TEXT NOT NULL, lat REAL, lon REAL,
            photos TEXT NOT NULL, taken_at TEXT NOT NULL);
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL,
            topic TEXT NOT NULL, node TEXT, record_id TEXT, reason TEXT NOT NULL,
            payload BLOB NOT NULL
        );
        """
    )


@migrations()
def m002_expected_attendees(db):
    """Who an event expects (departments and people), and the indexes the
    attendance and occupancy queries read by (zone, time). Plain statements,
    not executescript (which would commit the migration's transaction early)."""
    for statement in (
        """CREATE TABLE event_expected (
            event_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('department', 'staff')),
            value TEXT NOT NULL,
            PRIMARY KEY (event_id, kind, value)
        )""",
        "CREATE INDEX presence_zone_last_seen ON presence(zone, last_seen)",
        "CREATE INDEX occupancy_zone_minute ON occupancy(zone, minute)",
    ):
        db.execute(statement)


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (and migrate) the hub database at ``path``."""
    return open_database(path, migrations)
