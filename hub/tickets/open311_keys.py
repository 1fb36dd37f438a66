"""The keys Open311 clients file requests with (``open311_keys``): each names
the client, and the tickets it files are reported by ``311:<name>``."""

from hub.db import write_transaction


def add_key(db, api_key: str, name: str) -> None:
    """Add a key, or rename the client of an existing one."""
    with write_transaction(db):
        db.conn.execute("INSERT INTO open311_keys (api_key, name) VALUES (?, ?) "
                        "ON CONFLICT (api_key) DO UPDATE SET name = excluded.name",
                        (api_key, name))


def key_name(db, api_key: str) -> str | None:
    """The client's name for a known key, else None."""
    row = db.conn.execute("SELECT name FROM open311_keys WHERE api_key = ?",
                          (api_key,)).fetchone()
    return row[0] if row else None
