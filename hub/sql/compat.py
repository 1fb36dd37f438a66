"""SQLite's functions that the hub's SQL uses, defined on PostgreSQL.

The hub's queries were written for SQLite, and a handful of its functions
have no PostgreSQL spelling both engines share. Rather than a second copy of
each query, ``hub.sql.migrate.apply`` defines them in the database (``CREATE
OR REPLACE``: each start brings them up to date), with SQLite's meaning for
what the hub passes them:

* ``json_each(text)``: one row per element of a JSON array (``key`` its
  index, ``value`` the element) or member of an object (``key`` its name).
  A scalar element's ``value`` is its text (SQLite gives it typed; the hub
  compares ids, zones and photo hashes, all text), a nested one its JSON.
  PostgreSQL's own ``json_each(json)`` and ``json_each(jsonb)`` take only
  objects and stay as they are: a TEXT column, or a parameter (which psycopg
  sends untyped, and PostgreSQL then resolves to the string type), picks
  this one.
* ``json_extract(text, path)`` for the paths the hub uses, ``$[n]`` and
  ``$.name``: the value there as text, NULL where there is none.
* scalar ``min(a, b)`` / ``max(a, b)``: the smaller or larger, NULL if either
  is NULL (PostgreSQL's ``least``/``greatest`` ignore NULLs); arguments of
  two integer types meet in the wider one (``anycompatible``, PostgreSQL 13).
* ``sum(boolean)``: how many were true, as SQLite sums a comparison's 0/1
  (0 over no rows, where SQLite gives NULL; the hub wraps it in coalesce).

Integer flags used as conditions (``WHERE NOT revoked``) cannot be defined
away: the hub compares them (``revoked = 0``), which reads the same on both.
"""

FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION json_each(document text)
       RETURNS TABLE (key text, value text) LANGUAGE sql IMMUTABLE AS '
         SELECT CASE jsonb_typeof(CAST(document AS jsonb))
                  WHEN ''array'' THEN CAST(e.index - 1 AS text) ELSE e.name END,
                CASE jsonb_typeof(e.element) WHEN ''string'' THEN e.element #>> ''{}''
                  WHEN ''null'' THEN NULL ELSE CAST(e.element AS text) END
         FROM (SELECT NULL AS name, a.element, a.index
                 FROM jsonb_array_elements(CASE jsonb_typeof(CAST(document AS jsonb))
                   WHEN ''array'' THEN CAST(document AS jsonb) ELSE ''[]'' END)
                   WITH ORDINALITY AS a(element, index)
               UNION ALL
               SELECT o.key, o.value, NULL
                 FROM jsonb_each(CASE jsonb_typeof(CAST(document AS jsonb))
                   WHEN ''object'' THEN CAST(document AS jsonb) ELSE ''{}'' END) AS o)
              AS e (name, element, index)
         ORDER BY e.index'""",
    """CREATE OR REPLACE FUNCTION json_extract(document text, path text)
       RETURNS text LANGUAGE sql IMMUTABLE AS '
         SELECT CASE jsonb_typeof(v) WHEN ''string'' THEN v #>> ''{}''
                  WHEN ''null'' THEN NULL ELSE CAST(v AS text) END
         FROM (SELECT CASE
                 WHEN path ~ ''^\\$\\[[0-9]+\\]$''
                   THEN CAST(document AS jsonb) -> CAST(substring(path FROM ''[0-9]+'') AS int)
                 WHEN path ~ ''^\\$\\.[A-Za-z_][A-Za-z0-9_]*$''
                   THEN CAST(document AS jsonb) -> substring(path FROM 3)
               END AS v) AS found'""",
    """CREATE OR REPLACE FUNCTION min(a anycompatible, b anycompatible)
       RETURNS anycompatible LANGUAGE sql IMMUTABLE AS '
         SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE least(a, b) END'""",
    """CREATE OR REPLACE FUNCTION max(a anycompatible, b anycompatible)
       RETURNS anycompatible LANGUAGE sql IMMUTABLE AS '
         SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE greatest(a, b) END'""",
    """CREATE OR REPLACE FUNCTION rounds_count_true(total bigint, value boolean)
       RETURNS bigint LANGUAGE sql IMMUTABLE AS '
         SELECT total + CASE WHEN value THEN 1 ELSE 0 END'""",
    """CREATE OR REPLACE AGGREGATE sum(boolean)
       (SFUNC = rounds_count_true, STYPE = bigint, INITCOND = '0')""",
)


def define(raw) -> None:
    """Define the functions on a psycopg connection (no placeholders in
    them: run as written, not through ``Connection.execute``'s translation)."""
    for statement in FUNCTIONS:
        raw.execute(statement)
