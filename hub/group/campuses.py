"""Where each campus's data lives in the group's PostgreSQL database: a schema
per site, named ``site_<site>`` (quoted: a site id may hold ``-``), reached by
a DSN whose connections start with that schema as their search path."""

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from hub.db import open_db

# As provisioning/site.py's SITE_ID: what a site id may be.
SITE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")


def schema(site: str) -> str:
    """The schema of ``site``'s data (ValueError for what is not a site id)."""
    if not SITE_ID.match(site):
        raise ValueError(f"not a site id: {site!r}")
    return f"site_{site}"


def campus_dsn(group_dsn: str, site: str) -> str:
    """``group_dsn`` with ``site``'s schema as the search path of its
    connections (libpq's ``options``; any options already there are kept)."""
    parts = urlsplit(group_dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    kept = dict(parse_qsl(parts.query)).get("options", "")
    options = f'{kept} -c search_path="{schema(site)}"'.strip()
    # %20 for the space: libpq decodes %XX in a URI, not "+"
    return urlunsplit(parts._replace(query=urlencode([*query, ("options", options)],
                                                     quote_via=quote)))


def ensure(group_dsn: str, site: str) -> str:
    """Create ``site``'s schema if missing and migrate it; its DSN."""
    create = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema(site)))
    with psycopg.connect(group_dsn, autocommit=True) as conn:
        conn.execute(create)
    dsn = campus_dsn(group_dsn, site)
    open_db(dsn).close()
    return dsn
