"""The staff record (医德医风档案) and its review chain (五层三审: the person,
their department, their party branch, the civility office, the civility
committee; reviews by department, branch and committee).

``entries`` (what a person files about themselves and each entry's history),
``system`` (the entries the hub files itself: events attended, volunteer
hours approved, reports accepted), ``review`` (the review levels from
hub.json, who decides at each, the decisions, the reviewer's inbox) and
``errors``. Only a fully approved entry counts (``entries.approved``, read by
hub/assessment) and enters the person's record.

Tables it owns: ``record_entries``, ``entry_reviews``. It reads the party
branch of a staff member (``staff.branch``) and of an account
(``accounts.branch``), which hub/people keeps.
"""
