"""One connection API for the hub over SQLite and PostgreSQL (issue 16).

The hub is raw SQL: its modules call ``db.conn.execute("... ?", params)``.
``hub.db.open_db`` gives them a sqlite-utils Database for a SQLite file (the
default) or, for a ``postgresql://`` DSN, a ``Connection`` (``connect``) that
answers the same calls: ``execute``/``executemany`` with the same ``?`` and
``:name`` placeholders, ``db.conn``, ``query``, ``atomic``, and
``hub.db.write_transaction``, where an advisory lock stands in for SQLite's
single writer. ``dialect`` spells the few things the two engines write
differently (``dialect_of(db)``), ``compat`` defines on PostgreSQL the SQLite
functions the hub's queries use, ``migrate`` applies the one migration history
(``hub.db.HISTORY``) there, and ``transfer`` is ``rounds-hub db migrate-to``.
"""

from .connection import (
    Connection, Error, IntegrityError, TransactionAborted, connect, dialect_of, is_dsn,
)
from .dialect import POSTGRESQL, SQLITE, Dialect

__all__ = ["Connection", "Dialect", "Error", "IntegrityError", "POSTGRESQL", "SQLITE",
           "TransactionAborted", "connect", "dialect_of", "is_dsn"]
