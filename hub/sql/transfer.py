"""Copy a hub's SQLite database into PostgreSQL, and prove the copy
(``rounds-hub db migrate-to``).

The target gets the hub's schema from the one migration history
(``hub.sql.migrate``) and must hold nothing else: a database the hub's
migrations have created (their seed rows, ``hub.db.SEEDED_TABLES``, are
replaced by the source's), never one with data of its own. Every table is copied in one PostgreSQL
transaction (all or nothing) with ``COPY``, parents before the tables whose
foreign keys name them; identity sequences then continue after the largest
copied id. Then each table is read back on both sides: its row count and a
checksum over every value (each row's SHA-256, its values normalised by the
target column's type: text, integer, float, bytes) must agree.

Stop the hub's ingest and web before the copy that is to count: rows written
during a copy are not in it.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from hub import db as hub_db

from . import migrate
from .connection import Connection, connect

_SQLITE_OWN = ("sqlite_%", "_sqlite_migrations")


class TransferError(Exception):
    """The copy cannot be made or does not match (nothing was committed, or
    the copy is not to be used)."""


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    checksum: str  # hex SHA-256 of the table's values, the same on both sides


def migrate_to(sqlite_path, dsn: str, *, batch: int = 5000,
               progress: Callable[[str], None] = lambda line: None) -> list[TableCopy]:
    """Copy the hub database at ``sqlite_path`` into the PostgreSQL database
    ``dsn``; returns each table's rows and checksum (verified on both sides)."""
    source = hub_db.open_db(sqlite_path)
    target = connect(dsn)
    try:
        tables = _tables(source.conn)
        migrate.apply(target, hub_db.HISTORY)
        occupied = [t for t in tables if t not in hub_db.SEEDED_TABLES and _count(target, t)]
        if occupied:
            raise TransferError(f"the target database already has rows in {', '.join(occupied)}:"
                                " migrate into an empty database")
        order = _parents_first(target, tables)
        with target.write_transaction(lock="rounds-migrate-to"):
            for table in hub_db.SEEDED_TABLES:  # the migrations' seeds: the source has its own
                target.execute(f"DELETE FROM {table}")
            for table in order:
                rows = _copy_table(source.conn, target, table, batch)
                progress(f"copied {table}: {rows} rows")
            _continue_identities(target, tables)
        copies = [_verify(source.conn, target, table) for table in order]
        for copy in copies:
            progress(f"verified {copy.table}: {copy.rows} rows, sha256 {copy.checksum[:16]}")
        return copies
    finally:
        target.close()
        source.close()


def _tables(conn) -> list[str]:
    return [t for (t,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE ? "
        "AND name != ? ORDER BY name", _SQLITE_OWN)]


def _count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _columns(conn, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _parents_first(target: Connection, tables: list[str]) -> list[str]:
    """``tables`` ordered so that every table comes after those its foreign
    keys reference (PostgreSQL checks them row by row during the copy)."""
    parents = {t: set() for t in tables}
    for child, parent in target.execute(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text "
            "FROM pg_constraint c WHERE c.contype = 'f'"):
        if child in parents and parent != child:
            parents[child].add(parent)
    ordered, placed = [], set()
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in placed and parents[t] <= placed]
        if not ready:
            raise TransferError(f"foreign keys form a cycle among {sorted(set(tables) - placed)}")
        ordered.extend(ready)
        placed.update(ready)
    return ordered


def _copy_table(source, target: Connection, table: str, batch: int) -> int:
    columns = _columns(source, table)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = source.execute(f"SELECT {names} FROM {table} ORDER BY rowid")
    copied = 0
    with target.raw.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        while rows := cursor.fetchmany(batch):
            for row in rows:
                copy.write_row(row)
            copied += len(rows)
    return copied


def _continue_identities(target: Connection, tables: list[str]) -> None:
    """Each identity column's next value after the largest copied one."""
    for table, column in target.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND is_identity = 'YES'").fetchall():
        if table in tables:
            target.execute(
                f"SELECT setval(pg_get_serial_sequence(?, ?), "
                f"coalesce(max({column}), 0) + 1, false) FROM {table}", (table, column))


def _verify(source, target: Connection, table: str) -> TableCopy:
    """The table's row count and checksum on both sides, or TransferError.
    The checksum is the sum (mod 2**256) of each row's SHA-256, so it does not
    depend on the order rows come back in (the engines' text collations may
    differ)."""
    types = dict(target.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = ?", (table,)).fetchall())
    columns = _columns(source, table)
    normalise = [_NORMALISE.get(types[c], str) for c in columns]
    names = ", ".join(f'"{c}"' for c in columns)
    counts, sums = [], []
    for conn in (source, target):
        total, rows = 0, 0
        for row in conn.execute(f"SELECT {names} FROM {table}"):
            values = tuple(None if v is None else f(v) for f, v in zip(normalise, row))
            total += int.from_bytes(hashlib.sha256(repr(values).encode()).digest(), "big")
            rows += 1
        counts.append(rows)
        sums.append(f"{total % 2 ** 256:064x}")
    if counts[0] != counts[1] or sums[0] != sums[1]:
        raise TransferError(f"{table}: the copy differs from the source "
                            f"({counts[0]} rows, sha256 {sums[0][:16]}; copy {counts[1]} rows, "
                            f"sha256 {sums[1][:16]})")
    return TableCopy(table, counts[0], sums[0])


_NORMALISE = {"bigint": int, "double precision": float, "bytea": bytes, "text": str}
