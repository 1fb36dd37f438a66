"""Attendance: who was expected, who came, and the records people download.

``attendance`` (events' attendance from check-ins and presence), ``settle``
(an ended event's attendance kept before its presence is pruned),
``occupancy`` (devices per zone, minute by minute) and ``exports`` (a person's
or an event's record as XLSX or CSV).

Tables it owns: ``event_expected``, ``attendance_settled``. It reads the node records that
``hub.ingest`` writes.
"""
