"""One connection API for the hub over SQLite and PostgreSQL (issue 16).

The hub is raw SQL: its modules call ``db.conn.execute("... ?", params)`` on
sqlite-utils Databases. To run it on PostgreSQL as well, they will move, one
module at a time, to ``hub.sql.connect(target)``: the same ``execute`` /
``executemany`` with the same ``?`` and ``:name`` placeholders, and
``write_transaction(lock=...)`` in place of ``hub.db.write_transaction`` (on
PostgreSQL an advisory lock stands in for SQLite's single writer).
``hub.sql.dialect`` spells the few things the two engines write differently.
SQLite stays the default; a ``postgresql://`` DSN selects PostgreSQL.

Used so far by the one migration history (``hub.sql.migrate`` applies
``hub.db.HISTORY`` to PostgreSQL; tests/test_hub_schema_pg.py proves the two
schemas equal) and by ``rounds-hub db migrate-to`` (``hub.sql.transfer``).
The hub's queries still run on SQLite only.
"""

from .connection import Connection, Error, IntegrityError, TransactionAborted, connect
from .dialect import POSTGRESQL, SQLITE, Dialect

__all__ = ["Connection", "Dialect", "Error", "IntegrityError", "POSTGRESQL", "SQLITE",
           "TransactionAborted", "connect"]
