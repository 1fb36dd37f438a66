"""The few sqlite-utils table calls the hub's tests seed and read their data
with (``db["staff"].insert_all(rows)``, ``db["events"].count``, ``.get(pk)``,
``.delete_where(...)``), on a PostgreSQL ``hub.sql.Connection``, so one test
body runs on both backends (tests/conftest.py ``hub_db``).

Values are stored as sqlite-utils stores them: a list or dict as its JSON
text, a bool as 0/1. Only what the tests use; the hub itself writes SQL.
"""

import json

import psycopg

from hub.sql import Connection


class TablesConnection(Connection):
    """A PostgreSQL Connection that also answers ``db["table"]``."""

    @classmethod
    def open(cls, dsn: str) -> "TablesConnection":
        return cls(psycopg.connect(dsn, autocommit=True), "postgresql")

    def __getitem__(self, name: str) -> "Table":
        return Table(self, name)


class NotFoundError(KeyError):
    """``Table.get`` found no row (sqlite-utils raises its own NotFoundError)."""


def _stored(value):
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


class Table:
    def __init__(self, conn: Connection, name: str):
        self.conn, self.name = conn, name
        self.last_pk = None

    def insert(self, record: dict, **_) -> "Table":
        """One row; its primary key in ``last_pk``, as sqlite-utils keeps it."""
        columns = list(record)
        quoted = ", ".join(f'"{c}"' for c in columns)
        keys = self._primary_key()
        marks = ", ".join("?" * len(columns))
        returning = ", ".join(f'"{k}"' for k in keys)
        with self.conn.write_transaction():
            row = self.conn.execute(
                f'INSERT INTO "{self.name}" ({quoted}) VALUES ({marks}) RETURNING {returning}',
                tuple(_stored(record[c]) for c in columns)).fetchone()
        self.last_pk = row[0] if len(keys) == 1 else tuple(row)
        return self

    def insert_all(self, records, **_) -> "Table":
        records = list(records)
        columns = list(dict.fromkeys(c for r in records for c in r))
        quoted = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        with self.conn.write_transaction():
            self.conn.executemany(f'INSERT INTO "{self.name}" ({quoted}) VALUES ({marks})',
                                  [tuple(_stored(r.get(c)) for c in columns) for r in records])
        return self

    @property
    def count(self) -> int:
        return self.conn.execute(f'SELECT count(*) FROM "{self.name}"').fetchone()[0]

    def _primary_key(self) -> list[str]:
        return [c for (c,) in self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(? AS regclass) "
            "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)", (self.name,))]

    def get(self, pk) -> dict:
        keys = self._primary_key()
        values = pk if isinstance(pk, (list, tuple)) else (pk,)
        where = " AND ".join(f'"{k}" = ?' for k in keys)
        rows = list(self.conn.query(f'SELECT * FROM "{self.name}" WHERE {where}', tuple(values)))
        if not rows:
            raise NotFoundError(pk)
        return rows[0]

    def delete_where(self, where: str, params=()) -> "Table":
        with self.conn.write_transaction():
            self.conn.execute(f'DELETE FROM "{self.name}" WHERE {where}', params)
        return self


def table_names(db) -> list[str]:
    """The hub's own tables (not the engines' or the migration records), by name."""
    if isinstance(db, Connection):
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
               "AND table_name != '_rounds_migrations' ORDER BY table_name")
    else:
        sql = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' "
               "AND name != '_sqlite_migrations' ORDER BY name")
    return [name for (name,) in db.conn.execute(sql)]
