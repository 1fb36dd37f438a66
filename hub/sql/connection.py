"""``connect(target)``: a Connection to the hub's SQLite file or a PostgreSQL
database, with one API for both.

Placeholders: the hub writes ``?`` with a sequence or ``:name`` with a
mapping (SQLite's own styles). For psycopg each distinct SQL text is
translated once (``translate``, cached) to ``%s`` / ``%(name)s``; string
literals, quoted identifiers, comments and ``::type`` casts are left alone,
and every literal ``%`` (``LIKE 'a%'``) becomes ``%%``, which psycopg turns
back into ``%``. PostgreSQL's jsonb ``?`` operators therefore cannot be
written (use ``jsonb_exists`` etc.), nor can dollar-quoted strings.

Transactions: both run in autocommit mode, so a lone statement commits at
once and no connection sits in a forgotten transaction; every multi-statement
write is a ``write_transaction``, which serialises writers as SQLite does.
"""

import hashlib
import itertools
import re
import sqlite3
from collections.abc import Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psycopg
from psycopg.pq import TransactionStatus

from runtime.sqlite import open_database

from .dialect import POSTGRESQL, SQLITE

# For ``except``: either engine's errors (both are DB-API hierarchies).
Error = (sqlite3.Error, psycopg.Error)
IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)


class TransactionAborted(psycopg.errors.InFailedSqlTransaction):
    """A write_transaction on PostgreSQL ended normally after a statement in it
    had failed (its error caught): PostgreSQL aborts the whole transaction
    then, and its COMMIT would silently roll back. Rolled back, and said so.
    Catch an expected failure in a nested write_transaction (a savepoint)."""


_TOKEN = re.compile(r"""
      '(?:[^']|'')*'          # string literal
    | "(?:[^"]|"")*"          # quoted identifier
    | --[^\n]*                # line comment
    | /\*.*?\*/               # block comment
    | ::                      # a cast, not a named placeholder
    | \?                      # qmark placeholder
    | :([A-Za-z_][A-Za-z0-9_]*)  # named placeholder
    | %
""", re.VERBOSE | re.DOTALL)


@lru_cache(maxsize=4096)
def translate(sql: str) -> tuple[str, str | None]:
    """``sql`` in psycopg's placeholder syntax, and its style: "qmark",
    "named" or None (no placeholders)."""
    styles = set()

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token == "?":
            styles.add("qmark")
            return "%s"
        if match.group(1):
            styles.add("named")
            return f"%({match.group(1)})s"
        return token.replace("%", "%%")

    text = _TOKEN.sub(replace, sql)
    if len(styles) > 1:
        raise ValueError(f"both ? and :name placeholders in one statement: {sql!r}")
    return text, styles.pop() if styles else None


def _check(style: str | None, params):
    if style == "named" and not isinstance(params, Mapping):
        raise TypeError(f":name placeholders need a mapping, not {type(params).__name__}")
    if style == "qmark" and isinstance(params, Mapping):
        raise TypeError("? placeholders need a sequence, not a mapping")
    return params


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` (Python's
    ``hash`` differs between processes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(),
                          "big", signed=True)


def is_dsn(target) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file."""
    return str(target).startswith(("postgresql://", "postgres://"))


def dialect_of(db):
    """The Dialect of ``db``: a Connection's own, SQLite for a sqlite-utils
    Database (the hub's default)."""
    return getattr(db, "dialect", SQLITE)


def connect(target) -> "Connection":
    """A ``postgresql://`` (or ``postgres://``) DSN: PostgreSQL through psycopg
    3. Anything else is the path of a SQLite file, opened as
    runtime.sqlite opens it (WAL, synchronous=FULL, busy timeout,
    autocommit)."""
    if is_dsn(target):
        raw = psycopg.connect(str(target), autocommit=True)
        raw.adapters.register_loader("numeric", _NumberLoader)
        return Connection(raw, "postgresql")
    return Connection(open_database(Path(target)).conn, "sqlite")


class _NumberLoader(psycopg.adapt.Loader):
    """PostgreSQL's ``numeric`` (what ``sum`` of an integer column gives) as
    SQLite gives numbers: an int when it is whole, else a float. The hub keeps
    no decimal amounts, and a Decimal would reach JSON as a string."""

    def load(self, data) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


class Connection:
    """``execute``/``executemany`` return the engine's cursor (``fetchone``,
    ``fetchall``, iteration, ``rowcount``), rows as tuples on both."""

    def __init__(self, raw, backend: str):
        self.raw, self.backend = raw, backend
        self.dialect = POSTGRESQL if backend == "postgresql" else SQLITE
        self._savepoints = itertools.count(1)

    def execute(self, sql: str, params=()):
        text, style = translate(sql)
        _check(style, params)
        if self.backend == "sqlite":
            return self.raw.execute(sql, params)
        return self.raw.execute(text, params)  # never None: psycopg then keeps %%

    def executemany(self, sql: str, seq_of_params):
        """Run ``sql`` once per parameter set; ``rowcount`` is the total."""
        text, style = translate(sql)
        checked = (_check(style, params) for params in seq_of_params)
        if self.backend == "sqlite":
            return self.raw.executemany(sql, checked)
        cursor = self.raw.cursor()
        cursor.executemany(text, checked)
        return cursor

    @property
    def in_transaction(self) -> bool:
        if self.backend == "sqlite":
            return self.raw.in_transaction
        return self.raw.info.transaction_status in (
            TransactionStatus.INTRANS, TransactionStatus.INERROR, TransactionStatus.ACTIVE)

    def _raise_if_aborted(self) -> None:
        if (self.backend == "postgresql"
                and self.raw.info.transaction_status == TransactionStatus.INERROR):
            raise TransactionAborted(
                "a statement failed inside this write_transaction; rolled back")

    def _lock(self, name: str | None) -> None:
        if self.backend == "postgresql" and name is not None:
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(name),))

    @contextmanager
    def write_transaction(self, lock: str | None = "hub"):
        """A write transaction, committed on success and rolled back on an
        exception; inside another transaction, a savepoint.

        SQLite: ``BEGIN IMMEDIATE`` takes the database's one write lock before
        anything is read. PostgreSQL: ``BEGIN`` and a transaction-scoped
        advisory lock on ``lock`` (held until COMMIT or ROLLBACK), so two
        writers using the same lock name run one after the other and a
        read-then-write (a capacity check, then an insert) cannot interleave.
        Writers with different lock names run concurrently on PostgreSQL;
        ``lock=None`` takes none (writes that conflict with nobody's reads:
        ``INSERT ... ON CONFLICT`` of record ids, serialised by the rows).
        READ COMMITTED is spelled out because the lock depends on it: each
        statement after the lock sees what the previous holder committed
        (under REPEATABLE READ the snapshot would predate the wait)."""
        if self.in_transaction:
            savepoint = f"rounds_sp_{next(self._savepoints)}"
            self.raw.execute(f"SAVEPOINT {savepoint}")
            try:
                self._lock(lock)
                yield self
                self._raise_if_aborted()
            except BaseException:
                self.raw.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                self.raw.execute(f"RELEASE SAVEPOINT {savepoint}")
                raise
            self.raw.execute(f"RELEASE SAVEPOINT {savepoint}")
            return
        if self.backend == "sqlite":
            self.raw.execute("BEGIN IMMEDIATE")
        else:
            self.raw.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        try:
            self._lock(lock)
            yield self
            self._raise_if_aborted()
        except BaseException:
            if self.in_transaction:  # SQLite may have rolled back already
                self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    # --- the part of a sqlite-utils Database the hub's modules use ----------
    # They were written against sqlite-utils (``db.conn.execute``, ``db.query``,
    # ``db.atomic()``); on PostgreSQL ``hub.db.open_db`` gives them this
    # Connection, which answers the same calls.

    @property
    def conn(self) -> "_Sqlite3Style":
        """``db.conn.execute(...)`` works on either kind of ``db``, and so
        does ``with db.conn:`` (a Connection's own ``with`` closes it)."""
        return _Sqlite3Style(self)

    def atomic(self):
        """sqlite-utils' ``atomic()``: a write transaction, or a savepoint in one."""
        return self.write_transaction()

    def query(self, sql: str, params=()):
        """Rows as dicts, as sqlite-utils' ``Database.query`` yields them."""
        cursor = self.execute(sql, params)
        names = [column[0] for column in cursor.description]
        for row in cursor:
            yield dict(zip(names, row))

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Sqlite3Style:
    """A Connection seen as hub code sees a sqlite3 connection (``db.conn``):
    every call passed on, and ``with db.conn:`` doing what it does on the
    hub's SQLite connections, which run in autocommit mode: nothing (each
    statement has committed already; sqlite3's rollback on an exception finds
    no transaction to undo). What must be atomic is a ``write_transaction``."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection):
        self._connection = connection

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def __enter__(self) -> "_Sqlite3Style":
        return self

    def __exit__(self, *exc) -> None:
        return None
