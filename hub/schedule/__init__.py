"""Schedule: where and when things happen.

``events`` (lectures, trainings, meetings, duties), ``registration`` (signing
up for an event: its settings, places, the waiting list; beside it
``registration_settings`` what the settings may be, ``registration_lists``
who is registered and waiting and what a person or a node sees,
``registration_records`` the portals' records applied at ingest), ``zones``
(the hospital's places and their floor plans), ``floor_plans`` (what an
uploaded plan may be) and ``ical`` (calendar feeds).

Tables it owns: ``events``, ``zones``, ``floor_plans``, ``event_registration``,
``registrations``.
"""
