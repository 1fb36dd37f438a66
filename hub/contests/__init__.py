"""Live audience scoring (现场评分) at a contest in the lecture hall.

``acts`` (an event of kind ``contest``: its rule, acts in order, judges; each
act's scoring opened with a countdown and closed) and ``scoring`` (the running
ranking from the ``score`` records phones send through the nodes, frozen when
the last act has closed).

Tables it owns: ``contests``, ``contest_acts``, ``contest_judges``. It reads
the ``scores`` records that ``hub.ingest`` writes and ``checkins`` (only
people checked in to the event, and the judges, may score).
"""
