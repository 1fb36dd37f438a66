"""Ingest: what the nodes send, into the hub database.

``subscriber`` (the MQTT daemon: uplink in, acks, roster and configs out),
``workers`` (several subscribers sharing the uplinks, and their supervisor),
``store`` (validated batches into the record tables, bad ones to
quarantine), ``clockfix`` (records made while a node's clock was wrong),
``downlink`` (the roster and node configs sent down), ``photos`` (verified,
content-addressed photo files) and ``pruning`` (its tables' rows past their
retention period, hub/retention.py).

Tables it owns: the node records ``checkins``, ``presence``, ``occupancy``,
``bindings``, ``reports``; ``devices``, ``quarantine``, ``clock_flags`` and
``photos`` (no other module reads or writes ``photos``: ask ``photos``).
"""
