"""How the codes the hub stores are shown on the dashboard.

The database keeps codes (``hygiene``, ``presence``, ``ticket.transition``,
department ``nursing``); a page shows words. The words for the codes the
software itself defines are here, in English marked with ``N_()`` and
translated by the functions below when shown; the names of what a site
defines (departments, zones, the site itself) come from their tables, read
once a request. A code without words is shown as stored.

Those names are stored in the hospital's language (Chinese), each with an
optional English name beside it (``departments.name_en``, ``zones.name_en``,
the site's ``name_en``): ``department_names``, ``zone_names`` and
``site_name`` give the English one to a reader who picked English, and the
stored name otherwise (also when no English name was given). Text people
type (event titles, notes, comments, people's names) is shown as typed.

Category labels are seed data in English (``hub.db._CATEGORY_SEEDS``), kept
in ``category_settings.label``: a seeded category whose label is still the
seed's is shown translated; one whose label a site changed, or a category
the seeds do not know, is shown with its stored label.

What is stored never changes here: the ticket history's system comments
("created from report <uuid>", by ``hub.tickets``) are matched and worded at
display time (``history_comment``).

``init_app`` registers the ``hours`` filter and the label globals for the
templates; the pages blueprint calls it when it is registered (see pages.py).
"""

from flask import Flask, current_app
from flask_babel import gettext as _

from hub.fleet import site
from hub.people import roster
from hub.schedule import zones
from hub.tickets import categories
from hub.tickets.tickets import SYSTEM  # the history's author for what the hub did itself
from hub.web.context import get_db
from hub.web.i18n import lang


def N_(message: str) -> str:
    """Marks a message for extraction; translated where it is shown."""
    return message


# the seeded categories: code -> the seed's English label (the msgid)
CATEGORIES = {"hygiene": N_("Hygiene"), "facilities": N_("Facilities / repair"),
              "safety": N_("Safety hazard"), "signage": N_("Signage"),
              "service": N_("Service attitude"), "queue": N_("Queue / order")}
# attendance: how a person was counted (protocol.records: portal | presence)
METHODS = {"portal": N_("Phone check-in"), "presence": N_("Detected by Wi-Fi")}
# tickets.source: where the report came from
SOURCES = {"node": N_("On-site report"), "open311": N_("Open311 (API)"),
           "survey": N_("Low satisfaction score")}
# assessment_items.measure: what an assessment item counts
MEASURES = {"credit_hours": N_("Credit hours of events attended"),
            "events": N_("Events attended"), "volunteer_hours": N_("Approved volunteer hours"),
            "entries": N_("Approved record entries")}
# audit_log.action: what was done
ACTIONS = {
    "login": N_("Signed in"), "logout": N_("Signed out"),
    "account.create": N_("Account created"), "account.change": N_("Account changed"),
    "account.password": N_("Password set"), "account.token": N_("API token issued"),
    "department.add": N_("Department added"), "device.revoke": N_("Phone unbound"),
    "event.create": N_("Event created"), "event.update": N_("Event edited"),
    "event.delete": N_("Event deleted"), "export.event": N_("Event attendance exported"),
    "export.person": N_("Personal record exported"),
    "person.view": N_("Personal record viewed"),
    "floor_plan.upload": N_("Floor plan uploaded"),
    "hours.decision": N_("Volunteer hours decided"), "node.move": N_("Node moved to a zone"),
    "retention.delete": N_("Removed under the retention rules"),
    "assessment.item": N_("Assessment item saved"),
    "roster.import": N_("Roster imported"), "site.wifi": N_("Site Wi-Fi changed"),
    "staff.pin_reset": N_("PIN reset"),
    "staff.pin_reset_department": N_("Department PINs reset"),
    "staff.update": N_("Staff details changed"), "ticket.transition": N_("Ticket moved"),
    "zone.create": N_("Zone created"), "zone.update": N_("Zone edited"),
    "questionnaire.save": N_("Questionnaire saved"),
    "survey_task.create": N_("Survey task handed out"),
    "export.survey": N_("Survey responses exported"),
    "summary.save": N_("Summary draft saved"),
    "summary.redraft": N_("Summary redrafted from the data"),
    "export.summary": N_("Event summary exported"),
    "export.certificate": N_("Certificate of attendance issued"),
    "registration.register": N_("Registered for an event"),
    "registration.cancel": N_("Event registration cancelled"),
    "record.file": N_("Record entry filed"), "record.decision": N_("Record entry reviewed"),
    "record.resubmit": N_("Record entry resubmitted"),
}
_CREATED_FROM = "created from report "  # hub.tickets writes this + the report id
SHORT_ID = 8


def init_app(app: Flask) -> None:
    app.add_template_filter(hours)
    app.jinja_env.globals.update(
        category_label=category_label, method_label=method_label, source_label=source_label,
        action_label=action_label, history_comment=history_comment, history_who=history_who,
        site_name=site_name, measure_label=measure_label)


def _word(words: dict, code: str | None) -> str:
    if not code:
        return ""
    return _(words[code]) if code in words else code


def method_label(code: str | None) -> str:
    return _word(METHODS, code)


def method_labels() -> dict[str, str]:
    """Every method's words, translated once (for tables of many rows)."""
    return {code: _(words) for code, words in METHODS.items()}


def source_label(code: str | None) -> str:
    return _word(SOURCES, code)


def measure_label(code: str | None) -> str:
    return _word(MEASURES, code)


def action_label(code: str | None) -> str:
    return _word(ACTIONS, code)


def hours(value) -> str:
    """Template filter: hours as a person writes them: 1, 1.5, 0.25 (at most
    two decimals, no trailing zeros), so 1.0 and 1 read the same everywhere."""
    if value is None or value == "":
        return ""
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def category_label(code: str | None, stored: str | None = None) -> str:
    """The words for a category: translated while it is a seeded one with its
    seed label (or no stored label), else the stored label, else the code."""
    if not code:
        return ""
    seeded = CATEGORIES.get(code)
    if seeded is not None and (not stored or stored == seeded):
        return _(seeded)
    return stored or code


def category_labels(db) -> dict[str, str]:
    """Category code -> the words shown for it, for every configured category."""
    return {code: category_label(code, label) for code, label in categories.labels(db).items()}


def department_names(db) -> dict[str, str]:
    """Department code -> name in the reader's language, from the departments
    table (one query; a code the table does not name is shown as the code)."""
    return roster.department_names(db, lang())


def zone_names(db) -> dict[str, str]:
    """Zone -> name in the reader's language (one query)."""
    return zones.zone_names(db, lang())


def site_name() -> str:
    """The site's name in the reader's language (page titles); the site id
    from the hub config while no name is set."""
    return site.name(get_db(), lang()) or current_app.config["SITE"] or "Rounds"


def history_who(who: str | None) -> str:
    return _("System") if who == SYSTEM else (who or "")


def history_comment(change: dict) -> str:
    """A ticket history row's comment as shown: the hub's own comments in the
    reader's language (with the report id shortened), people's as typed."""
    comment = change.get("comment") or ""
    if change.get("who") == SYSTEM and comment.startswith(_CREATED_FROM):
        report_id = comment[len(_CREATED_FROM):].strip()
        return _("Created from report %(report)s", report=report_id[:SHORT_ID])
    return comment
