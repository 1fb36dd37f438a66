"""Attendance: who was expected, who came, and the records people download.

``attendance`` (events' attendance from check-ins and presence), ``occupancy``
(devices per zone, minute by minute) and ``exports`` (a person's or an
event's record as XLSX or CSV).

Tables it owns: ``event_expected``. It reads the node records that
``hub.ingest`` writes.
"""
