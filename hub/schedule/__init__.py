"""Schedule: where and when things happen.

``events`` (lectures, trainings, meetings, duties), ``zones`` (the hospital's
places and their floor plans), ``floor_plans`` (what an uploaded plan may be)
and ``ical`` (calendar feeds).

Tables it owns: ``events``, ``zones``, ``floor_plans``.
"""
