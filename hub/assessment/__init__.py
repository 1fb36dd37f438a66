"""Assessment (考核): the year's items (``items``: what counts, the target per
person by department or role) and everyone's progress against them
(``progress``: confirmed after the review chain, pending review, who is
behind, per department).

Tables it owns: ``assessment_items``. It reads events and attendance
(hub.attendance), the volunteer ledger (hub.tickets) and the record entries
(hub.records).
"""
