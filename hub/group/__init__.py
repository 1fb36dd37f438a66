"""The group hub (issue 16): one PostgreSQL database over every campus of a
hospital group, fed by the group broker, where each campus's broker bridges
its nodes' uplinks (README "Hospital group").

Each campus (a site) gets its own schema in the group's database, holding the
whole hub schema (``campuses``): the site is in every key by the schema's name,
and every hub module runs there unchanged, on a connection whose search path
is that schema. ``ingest`` takes every campus's uplinks from the group broker
into its schema, with the campus hub's own exactly-once rules; it sends
nothing down (each campus's hub does: acks, roster, schedules).

Owns no tables of its own: a campus schema's tables are the hub's.
"""
