"""Tickets: snap-and-report supervision and the volunteer hours it earns.

``tickets`` (routing, due times, duplicates, transitions), ``hours`` (the
volunteer ledger), ``hotspots`` (where problems recur), ``categories`` (what a
category means for its ticket and its hours), ``open311_keys`` (the keys
Open311 clients file with) and ``errors``.

Tables it owns: ``tickets``, ``ticket_reports``, ``ticket_history``,
``routing_rules``, ``category_settings``, ``volunteer_ledger``,
``open311_keys``.
"""
