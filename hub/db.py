"""The hub's SQLite database (WAL, synchronous=FULL) and its migrations.

One migration history for both engines (issue 16): the functions below, in
order (``HISTORY``), are applied to a SQLite file by sqlite-utils' Migrations
and to a PostgreSQL database by ``hub.sql.migrate``, which hands each the
same ``execute``/``executemany`` with its DDL in PostgreSQL's types
(``hub.sql.dialect``). The two places the engines need different statements
(the audit log's append-only triggers, widening a CHECK constraint) ask
``is_postgresql(db)``.
"""

import json
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlite_utils import Migrations

from runtime.sqlite import Checkpointer, open_database

from hub.sql.connection import Connection, connect, is_dsn
from hub.sql.migrate import apply as apply_migrations

migrations = Migrations("rounds-hub")
HISTORY = []  # every migration function, in order, for both engines


def migration(fn):
    """Register ``fn`` as the next migration (sqlite-utils' and ``HISTORY``)."""
    HISTORY.append(fn)
    return migrations()(fn)


def is_postgresql(db) -> bool:
    """Whether a migration runs on PostgreSQL (``hub.sql.migrate``) rather
    than on a SQLite file (a sqlite-utils Database)."""
    return getattr(db, "backend", "sqlite") == "postgresql"

# Every ingested record table has the record id as primary key (how duplicates
# are absorbed), the node it came from, its node timestamp and arrival time.
_RECORD_COLUMNS = "id TEXT PRIMARY KEY, node TEXT NOT NULL, ts TEXT NOT NULL, " \
    "clock_synced INTEGER, received_at TEXT NOT NULL"


@migration
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


@migration
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


# Seed categories: (category, label, description, keywords, group, due_hours,
# credit_hours, duplicate_credit_hours). Safety is due in 4 h, hygiene in 8 h,
# the rest in 48 h; an accepted original report earns 0.5 h, a duplicate 0 h.
_CATEGORY_SEEDS = (
    ("hygiene", "Hygiene", "Dirty floors, overflowing bins, spills, toilets",
     "clean,dirty,spill,bin,toilet", "Ward environment", 8, 0.5, 0),
    ("facilities", "Facilities / repair", "Broken equipment, lights, doors, leaks",
     "repair,broken,leak,light,door", "Ward environment", 48, 0.5, 0),
    ("safety", "Safety hazard", "Wet floor, blocked exit, exposed wiring, fire risk",
     "hazard,exit,fire,wiring,fall", "Safety", 4, 0.5, 0),
    ("signage", "Signage", "Missing, wrong or confusing signs",
     "sign,direction,wayfinding", "Ward environment", 48, 0.5, 0),
    ("service", "Service attitude", "Staff conduct towards patients and visitors",
     "attitude,conduct,rude", "Service", 48, 0.5, 0),
    ("queue", "Queue / order", "Queue jumping, crowding, disorder at counters",
     "queue,crowd,order,waiting", "Service", 48, 0.5, 0),
)
# Seed routing: category (and optionally zone) -> department; anything without
# a rule goes to the civility office (hub.tickets.tickets.DEFAULT_DEPARTMENT).
_ROUTING_SEEDS = (
    ("hygiene", None, "environmental_services"),
    ("facilities", None, "facilities"),
    ("safety", None, "security"),
)


# Tables m003 fills with seed rows (a copy into PostgreSQL replaces them with
# the source's: hub.sql.transfer).
SEEDED_TABLES = ("category_settings", "routing_rules")


@migration
def m003_tickets(db):
    """Snap-and-report on the hub: photos received, tickets and their history,
    routing, per-category settings, volunteer hours, Open311 API keys."""
    for statement in (
        """CREATE TABLE IF NOT EXISTS photos (
            sha256 TEXT PRIMARY KEY, size INTEGER, path TEXT, received_at TEXT, dhash TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS reports_report_id ON reports(report_id)",
        "CREATE INDEX IF NOT EXISTS reports_node ON reports(node, taken_at)",
        """CREATE TABLE category_settings (
            category TEXT PRIMARY KEY, label TEXT NOT NULL, description TEXT,
            keywords TEXT, group_name TEXT,
            due_hours REAL NOT NULL, credit_hours REAL NOT NULL DEFAULT 0,
            duplicate_credit_hours REAL NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE routing_rules (
            id INTEGER PRIMARY KEY AUTOINCREMENT, category TEXT NOT NULL, zone TEXT,
            department TEXT NOT NULL
        )""",
        """CREATE TABLE tickets (
            id INTEGER PRIMARY KEY AUTOINCREMENT, report_id TEXT NOT NULL UNIQUE,
            category TEXT NOT NULL, zone TEXT NOT NULL, department TEXT NOT NULL,
            state TEXT NOT NULL, created_at TEXT NOT NULL, reported_at TEXT NOT NULL,
            due_at TEXT NOT NULL, updated_at TEXT NOT NULL, staff_id TEXT NOT NULL,
            reporters INTEGER NOT NULL DEFAULT 1, lat REAL, lon REAL, note TEXT,
            photos TEXT NOT NULL DEFAULT '[]', source TEXT NOT NULL DEFAULT 'node'
        )""",
        "CREATE INDEX tickets_open ON tickets(state, zone, category, reported_at)",
        "CREATE INDEX tickets_reported ON tickets(reported_at)",
        """CREATE TABLE ticket_reports (
            report_id TEXT PRIMARY KEY, ticket_id INTEGER NOT NULL REFERENCES tickets(id),
            staff_id TEXT NOT NULL, duplicate INTEGER NOT NULL, matched_by TEXT,
            attached_at TEXT NOT NULL
        )""",
        "CREATE INDEX ticket_reports_ticket ON ticket_reports(ticket_id)",
        """CREATE TABLE ticket_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id INTEGER NOT NULL REFERENCES tickets(id),
            at TEXT NOT NULL, who TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
            comment TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX ticket_history_ticket ON ticket_history(ticket_id, at)",
        """CREATE TABLE volunteer_ledger (
            id INTEGER PRIMARY KEY AUTOINCREMENT, staff_id TEXT NOT NULL,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id), report_id TEXT NOT NULL,
            hours REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
            created_at TEXT NOT NULL, decided_by TEXT, decided_at TEXT,
            UNIQUE (ticket_id, report_id)
        )""",
        "CREATE INDEX volunteer_ledger_staff ON volunteer_ledger(staff_id, state)",
        "CREATE TABLE open311_keys (api_key TEXT PRIMARY KEY, name TEXT NOT NULL)",
    ):
        db.execute(statement)
    db.conn.executemany(
        "INSERT INTO category_settings (category, label, description, keywords, group_name, "
        "due_hours, credit_hours, duplicate_credit_hours) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        _CATEGORY_SEEDS)
    db.conn.executemany(
        "INSERT INTO routing_rules (category, zone, department) VALUES (?, ?, ?)",
        _ROUTING_SEEDS)


@migration
def m004_dashboard(db):
    """The dashboard: accounts and their roles, API tokens, login throttling,
    the audit log, departments, floor plans, and the indexes the board and
    attendance pages read by."""
    for statement in (
        """CREATE TABLE departments (
            department TEXT PRIMARY KEY, name TEXT NOT NULL
        )""",
        """CREATE TABLE accounts (
            username TEXT PRIMARY KEY,
            password_hash TEXT,
            role TEXT NOT NULL CHECK (role IN ('admin', 'office', 'dept_reviewer', 'staff')),
            department TEXT, staff_id TEXT,
            disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL
        )""",
        """CREATE TABLE api_tokens (
            token_hash TEXT PRIMARY KEY, username TEXT NOT NULL REFERENCES accounts(username),
            name TEXT NOT NULL, created_at TEXT NOT NULL
        )""",
        """CREATE TABLE login_failures (
            username TEXT NOT NULL, at TEXT NOT NULL
        )""",
        "CREATE INDEX login_failures_user ON login_failures(username, at)",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT, detail TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX audit_log_at ON audit_log(at)",
        # Floor plans: one drawing per (campus, building, floor), SVG or JSON
        # outline; each zone may carry a polygon in that drawing's coordinates.
        """CREATE TABLE floor_plans (
            id INTEGER PRIMARY KEY AUTOINCREMENT, campus TEXT, building TEXT, floor TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('svg', 'json')), content TEXT NOT NULL,
            width REAL NOT NULL DEFAULT 1000, height REAL NOT NULL DEFAULT 1000,
            updated_at TEXT NOT NULL, UNIQUE (campus, building, floor)
        )""",
        "ALTER TABLE zones ADD COLUMN polygon TEXT",
        "CREATE INDEX staff_department ON staff(department)",
        "CREATE INDEX tickets_department ON tickets(department, reported_at)",
        "CREATE INDEX events_start ON events(start)",
        "CREATE INDEX presence_staff ON presence(staff_id, first_seen)",
        "CREATE INDEX checkins_staff ON checkins(staff_id, ts)",
        "CREATE INDEX reports_staff ON reports(staff_id, taken_at)",
    ):
        db.execute(statement)


@migration
def m005_clock_flags(db):
    """Records a node made before NTP set its clock (``clock_synced`` false):
    the node's own timestamp, and the offset the hub corrected them by (NULL
    when it could not: see hub/ingest/clockfix.py)."""
    db.execute("""CREATE TABLE clock_flags (
        record_id TEXT PRIMARY KEY, node TEXT NOT NULL, type TEXT NOT NULL,
        node_ts TEXT NOT NULL, offset_seconds REAL, received_at TEXT NOT NULL
    )""")
    db.execute("CREATE INDEX clock_flags_node ON clock_flags(node, received_at)")


@migration
def m006_dashboard_indexes(db):
    """Presence by zone and time window with ``first_seen`` in the index. The
    attendance queries (``zone = ? AND last_seen >= start AND first_seen <=
    end``) walk every interval of the zone that ends after the event's start;
    with (zone, last_seen) alone each one cost a table lookup just to test
    ``first_seen`` (an event mid-year in a busy hall: ~35,000 lookups, ~30 ms
    per page; bench/bench_dashboard.py). The old index is a prefix of the new
    one, and kept, the planner (no ANALYZE statistics) goes on choosing it."""
    for statement in (
        "CREATE INDEX presence_zone_last_first ON presence(zone, last_seen, first_seen)",
        "DROP INDEX IF EXISTS presence_zone_last_seen",
    ):
        db.execute(statement)


@migration
def m007_site_settings(db):
    """Site-wide settings the hub pushes to every node (the staff Wi-Fi's SSID
    and passphrase), as JSON values by key."""
    db.execute("CREATE TABLE site_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migration
def m008_english_names(db):
    """An optional English name beside the stored name of a department and a
    zone (a Chinese hospital stores its names in Chinese): shown to a reader
    who picks English, the stored name when it is NULL (hub/web/labels.py)."""
    for statement in ("ALTER TABLE departments ADD COLUMN name_en TEXT",
                      "ALTER TABLE zones ADD COLUMN name_en TEXT"):
        db.execute(statement)


@migration
def m009_audit_log_append_only(db):
    """The audit log only grows: the app inserts rows and never changes or
    removes one. A retention job that must prune it drops these triggers,
    deletes and puts them back in one transaction, and logs what it removed."""
    if is_postgresql(db):
        db.execute("CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql "
                   "AS 'BEGIN RAISE EXCEPTION ''the audit log is append-only''; END'")
    for verb in ("UPDATE", "DELETE"):
        if is_postgresql(db):
            db.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                       "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
        else:
            db.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                       "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


@migration
def m010_retention(db):
    """Retention (hub/retention.py): a photo removed when its time was up keeps a
    row (so a late duplicate report still finds it "arrived") with ``removed_at``
    set and no file; an event's attendance is settled, kept as computed, before
    the presence intervals it was computed from are pruned."""
    for statement in (
        "ALTER TABLE photos ADD COLUMN removed_at TEXT",
        """CREATE TABLE attendance_settled (
            event_id TEXT PRIMARY KEY, settled_at TEXT NOT NULL, rows TEXT NOT NULL
        )""",
    ):
        db.execute(statement)


@migration
def m011_surveys(db):
    """Satisfaction surveys (hub/surveys): questionnaires, each version kept as
    written (a response names the version it answered); tasks handed to
    survey takers; the responses nodes send (``survey_response`` records, with
    nothing about the respondent); and the department a ward belongs to, for
    the satisfaction index per department."""
    for statement in (
        """CREATE TABLE questionnaires (
            id TEXT NOT NULL, version INTEGER NOT NULL, title TEXT NOT NULL, title_en TEXT,
            questions TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL,
            PRIMARY KEY (id, version)
        )""",
        """CREATE TABLE survey_tasks (
            id TEXT PRIMARY KEY, title TEXT NOT NULL, questionnaire TEXT NOT NULL,
            version INTEGER NOT NULL, zones TEXT NOT NULL, target INTEGER NOT NULL,
            opens_at TEXT NOT NULL, closes_at TEXT NOT NULL, surveyors TEXT NOT NULL,
            alert TEXT, created_at TEXT NOT NULL, created_by TEXT NOT NULL
        )""",
        f"""CREATE TABLE survey_responses ({_RECORD_COLUMNS}, task_id TEXT NOT NULL,
            questionnaire TEXT NOT NULL, version INTEGER NOT NULL, staff_id TEXT NOT NULL,
            zone TEXT NOT NULL, answers TEXT NOT NULL, taken_at TEXT NOT NULL)""",
        "CREATE INDEX survey_responses_task ON survey_responses(task_id, taken_at)",
        "CREATE INDEX survey_responses_zone ON survey_responses(zone, taken_at)",
        "ALTER TABLE zones ADD COLUMN department TEXT",
    ):
        db.execute(statement)


@migration
def m012_contests(db):
    """Live audience scoring (hub/contests): an event of kind ``contest`` has a
    scoring rule, acts in order (each opened and closed for scoring), named
    judges; the ``score`` records phones send through the nodes; and the final
    ranking frozen when the last act closes."""
    for statement in (
        """CREATE TABLE contests (
            event_id TEXT PRIMARY KEY, scale_min INTEGER NOT NULL, scale_max INTEGER NOT NULL,
            drop_extremes INTEGER NOT NULL, judge_weight REAL NOT NULL,
            frozen_at TEXT, final TEXT
        )""",
        """CREATE TABLE contest_acts (
            event_id TEXT NOT NULL, act TEXT NOT NULL, position INTEGER NOT NULL,
            title TEXT NOT NULL, performers TEXT NOT NULL DEFAULT '',
            opened_at TEXT, closes_at TEXT, closed_at TEXT,
            PRIMARY KEY (event_id, act)
        )""",
        """CREATE TABLE contest_judges (
            event_id TEXT NOT NULL, staff_id TEXT NOT NULL, PRIMARY KEY (event_id, staff_id)
        )""",
        f"""CREATE TABLE scores ({_RECORD_COLUMNS}, event_id TEXT NOT NULL, act TEXT NOT NULL,
            staff_id TEXT NOT NULL, value REAL NOT NULL, taken_at TEXT NOT NULL)""",
        "CREATE INDEX scores_act ON scores(event_id, act, staff_id, taken_at)",
    ):
        db.execute(statement)


@migration
def m013_registration(db):
    """Registration for events (hub/schedule/registration.py): an event's
    registration window, capacity and who may register; each person's
    registration, registered or on the waiting list (in ``queued_at`` order)
    or cancelled."""
    for statement in (
        """CREATE TABLE event_registration (
            event_id TEXT PRIMARY KEY, opens_at TEXT NOT NULL, closes_at TEXT NOT NULL,
            capacity INTEGER, departments TEXT NOT NULL DEFAULT '[]',
            roles TEXT NOT NULL DEFAULT '[]', staff TEXT NOT NULL DEFAULT '[]',
            required INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE registrations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
            staff_id TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('registered', 'waiting', 'cancelled')),
            queued_at TEXT NOT NULL, changed_at TEXT NOT NULL, via TEXT NOT NULL DEFAULT 'hub',
            UNIQUE (event_id, staff_id)
        )""",
        "CREATE INDEX registrations_event ON registrations(event_id, state, queued_at)",
        "CREATE INDEX registrations_staff ON registrations(staff_id, state)",
    ):
        db.execute(statement)


@migration
def m014_assessment(db):
    """Assessment items per year (hub/assessment): what counts (``measure``:
    credit hours or events attended of some kinds, approved volunteer hours,
    approved record entries of some kinds) and the target per person, by
    default or per department or role (``targets``: {"department:<code>": n,
    "role:<role>": n})."""
    db.execute("""CREATE TABLE assessment_items (
        year INTEGER NOT NULL, id TEXT NOT NULL, title TEXT NOT NULL, title_en TEXT,
        measure TEXT NOT NULL
            CHECK (measure IN ('credit_hours', 'events', 'volunteer_hours', 'entries')),
        event_kinds TEXT NOT NULL DEFAULT '[]', entry_kinds TEXT NOT NULL DEFAULT '[]',
        target REAL NOT NULL, targets TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (year, id)
    )""")


@migration
def m015_review_chain(db):
    """The staff record and its review chain (hub/records): entries a person
    files about themselves or the system makes (attendance, hours, accepted
    reports), each passing review levels (department, party branch,
    committee by default) with every step kept; staff belong to a party
    branch; accounts get the branch and committee reviewer roles (the role
    CHECK constraint is rebuilt, so the table is copied)."""
    for statement in (
        """CREATE TABLE record_entries (
            id INTEGER PRIMARY KEY AUTOINCREMENT, staff_id TEXT NOT NULL, kind TEXT NOT NULL,
            title TEXT NOT NULL, body TEXT NOT NULL DEFAULT '', occurred_on TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'self', source_ref TEXT,
            state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'returned')),
            level INTEGER NOT NULL DEFAULT 0, due_at TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            UNIQUE (source, source_ref)
        )""",
        "CREATE INDEX record_entries_inbox ON record_entries(state, level, staff_id)",
        "CREATE INDEX record_entries_staff ON record_entries(staff_id, occurred_on)",
        """CREATE TABLE entry_reviews (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            entry_id INTEGER NOT NULL REFERENCES record_entries(id), level INTEGER,
            who TEXT NOT NULL,
            action TEXT NOT NULL
                CHECK (action IN ('submit', 'approve', 'reject', 'return', 'resubmit')),
            reason TEXT NOT NULL DEFAULT '', at TEXT NOT NULL
        )""",
        "CREATE INDEX entry_reviews_entry ON entry_reviews(entry_id, id)",
        "ALTER TABLE staff ADD COLUMN branch TEXT",
    ):
        db.execute(statement)
    roles = ("role IN ('admin', 'office', 'dept_reviewer', 'branch_reviewer', "
             "'committee_reviewer', 'staff')")
    if is_postgresql(db):
        accounts = ("ALTER TABLE accounts DROP CONSTRAINT accounts_role_check",
                    f"ALTER TABLE accounts ADD CONSTRAINT accounts_role_check CHECK ({roles})",
                    "ALTER TABLE accounts ADD COLUMN branch TEXT")
    else:  # SQLite cannot change a CHECK constraint: the table is copied
        accounts = (
            f"""CREATE TABLE accounts_m015 (
                username TEXT PRIMARY KEY,
                password_hash TEXT,
                role TEXT NOT NULL CHECK ({roles}),
                department TEXT, staff_id TEXT,
                disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, branch TEXT
            )""",
            "INSERT INTO accounts_m015 (username, password_hash, role, department, staff_id, "
            "disabled, created_at) SELECT username, password_hash, role, department, staff_id, "
            "disabled, created_at FROM accounts",
            "DROP TABLE accounts",
            "ALTER TABLE accounts_m015 RENAME TO accounts")
    for statement in accounts:
        db.execute(statement)


@migration
def m016_drafts(db):
    """Drafted summaries (hub/summaries): the text drafted from the data for an
    event or a person's year, per language, as edited on the hub, with the
    facts it was drafted from."""
    db.execute("""CREATE TABLE drafts (
        kind TEXT NOT NULL CHECK (kind IN ('event', 'person_year')), subject TEXT NOT NULL,
        lang TEXT NOT NULL, text TEXT NOT NULL, facts TEXT NOT NULL, edited_by TEXT,
        updated_at TEXT NOT NULL, PRIMARY KEY (kind, subject, lang)
    )""")


@migration
def m017_account_campus(db):
    """On a group hub (hub.json ``campuses``), an office account may be limited
    to one campus: ``campus`` names its site, and the group pages show that
    campus only (hub/web/group.py). NULL: every campus, as before."""
    db.execute("ALTER TABLE accounts ADD COLUMN campus TEXT")


def open_db(target: str | Path, migrate: bool = True):
    """Open (and, unless ``migrate`` is False, migrate) the hub database:
    a SQLite file's path (a sqlite-utils Database) or a ``postgresql://``
    DSN (a ``hub.sql.Connection``, which answers the same calls)."""
    if is_dsn(target):
        conn = connect(target)
        if migrate:
            apply_migrations(conn, HISTORY)
        return conn
    return open_database(target, migrations if migrate else None)


# The ingest writer's page cache: a batch touches pages all over the staff,
# zone and time indexes (and the id indexes, for an older node's random
# UUIDs); SQLite's default 2 MiB keeps few of them.
INGEST_CACHE_KIB = 65536


@contextmanager
def ingest_writer(path: str | Path):
    """The ingest's writing connection: migrated, a larger page cache, and
    the WAL checkpointed by a background thread (runtime.sqlite.Checkpointer)
    instead of inside its commits."""
    db = open_db(path)
    try:
        if is_dsn(path):  # PostgreSQL checkpoints and caches on its own
            yield db
            return
        db.execute(f"PRAGMA cache_size = -{INGEST_CACHE_KIB}")
        with Checkpointer(db, path):
            yield db
    finally:
        db.close()


@contextmanager
def write_transaction(db, lock: str | None = "hub"):
    """A write transaction: a savepoint inside the caller's transaction, else
    ``BEGIN IMMEDIATE`` (take the write lock before reading, so a concurrent
    writer makes us wait instead of failing the upgrade). On PostgreSQL, a
    ``hub.sql.Connection``'s own (an advisory lock named ``lock`` stands in
    for the one writer; ``None``: none, see ``Connection.write_transaction``)."""
    if isinstance(db, Connection):
        with db.write_transaction(lock):
            yield db
        return
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def delete_batches(db, table: str, where: str, params=(), *, batch: int = 500,
                   around=None, dry_run: bool = False) -> int:
    """Delete the rows of ``table`` matching ``where`` (an SQL condition with
    ``params``), at most ``batch`` in each short write transaction so that the
    ingest is never held up for long; returns how many. Batches walk the table
    in rowid order, so the whole run reads each row once. ``around``, when
    given, is a context manager factory entered inside each transaction around
    the delete (the audit log's triggers are lifted there). ``dry_run``: only
    count them."""
    if dry_run:
        return db.conn.execute(f"SELECT count(*) FROM {table} WHERE {where}",
                               params).fetchone()[0]
    if isinstance(db, Connection):
        return _delete_batches_postgresql(db, table, where, params, batch, around)
    done, last = 0, 0
    while True:
        with write_transaction(db):
            ids = [rowid for (rowid,) in db.conn.execute(
                f"SELECT rowid FROM {table} WHERE rowid > ? AND ({where}) "
                "ORDER BY rowid LIMIT ?", (last, *params, batch))]
            if ids:
                with around(db) if around else nullcontext():
                    db.conn.execute(f"DELETE FROM {table} WHERE rowid IN "
                                    "(SELECT value FROM json_each(?))", (json.dumps(ids),))
        done += len(ids)
        if len(ids) < batch:
            return done
        last = ids[-1]


def _delete_batches_postgresql(db, table, where, params, batch, around) -> int:
    """``delete_batches`` on PostgreSQL: no rowid there; each batch deletes
    up to ``batch`` of the rows still matching, by their physical address
    (ctid), in its own transaction."""
    done = 0
    while True:
        with write_transaction(db), around(db) if around else nullcontext():
            deleted = db.conn.execute(
                f"DELETE FROM {table} WHERE ctid IN "
                f"(SELECT ctid FROM {table} WHERE {where} LIMIT ?)", (*params, batch)).rowcount
        done += deleted
        if deleted < batch:
            return done
