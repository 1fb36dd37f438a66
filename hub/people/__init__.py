"""People: the staff roster and who may use the hub.

``roster`` (departments, staff, PINs, phone bindings), ``roster_import``
(the CSV import), ``accounts`` (roles, passwords, API tokens, sign-in
throttling), ``account_admin`` (accounts as administrators manage them) and
``held`` (what the hub holds about one person, for their own page).

Tables it owns: ``staff``, ``departments``, ``accounts``, ``api_tokens``,
``login_failures``.
"""
