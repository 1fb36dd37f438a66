"""Drafted summaries (no language model, nothing leaves the hub): the facts
of an event or of a person's year, queried from the record (``facts``), a
first draft in zh-CN and en written from templates over those facts, with a
check that every number in a text is one of the facts' (``draft``), the
drafts as edited on the hub (``store``), and the files: DOCX and Markdown
(``export``), a person's whole year as XLSX sheets (``yearbook``) and the PDF
year report and certificate of attendance (``pdf``).

Tables it owns: ``drafts``. It reads events and attendance (hub.attendance),
registrations (hub.schedule), contests (hub.contests), reports and volunteer
hours (hub.tickets), record entries (hub.records) and assessment progress
(hub.assessment); the few queries of other areas' tables it needs are in
``sources``.
"""
