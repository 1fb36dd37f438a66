"""Satisfaction surveys (满意度测评) taken on the ward Wi-Fi.

``questionnaires`` (the questions, versioned), ``tasks`` (which wards, which
questionnaire, how many responses by when, by whom), ``results`` (live totals,
answer distributions, the satisfaction index per ward and department by week,
rows for export) and ``alerts`` (a low score opens a supervision ticket, routed
like a report).

Tables it owns: ``questionnaires``, ``survey_tasks``. It reads the
``survey_responses`` records that ``hub.ingest`` writes (answers checked
against their version by ``protocol.surveys``) and ``zones.department``.
"""
