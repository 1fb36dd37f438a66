"""Dashboard area "summaries": drafted summaries (hub/summaries), written from
the data in zh-CN and English, editable, downloadable as DOCX or Markdown.

- ``/events/<id>/summary`` (office): the event's draft in both languages,
  each editable (kept with who and when), "redraft from the data" dropping
  the edited one; linked from the event page.
- ``/me/year`` (any account linked to a staff number): one's own year,
  editable by its owner; ``/people/<staff_id>/year`` (office; a reviewer for
  their department's staff): the same, to read and download.

``?year=YYYY`` picks the year (this one by default). Every save, redraft and
download is audited; a number in a saved text that is none of the data's is
pointed out (``hub.summaries.draft.check``).
"""

from dataclasses import dataclass

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from hub.attendance import exports as record_exports
from hub.db import write_transaction
from hub.summaries import export, facts, store
from hub.summaries.draft import LANGS
from hub.summaries.store import DraftError
from hub.web import personal
from hub.web.auth import actor, audited, audited_look, requires
from hub.web.context import get_db, hospital_tz
from hub.web.i18n import NAMES

bp = Blueprint("summaries", __name__)
LANG = "<any(zh, en):draft_lang>"
DOC = "<any(docx, md):doc_fmt>"
OPENAPI = {"paths": {}, "schemas": {}}  # pages only


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@dataclass
class Subject:
    kind: str  # event | person_year
    subject: str  # the event id, or <staff id>:<year>
    facts: dict
    target: str  # what the audit rows name
    heading: str
    detail: dict  # the audit rows' detail


def _event(event_id: str) -> Subject:
    found = facts.event_facts(get_db(), event_id, hospital_tz())
    if found is None:
        abort(404, description=f"unknown event: {event_id}")
    return Subject("event", event_id, found, f"event:{event_id}",
                   _("Summary: %(title)s", title=found["title"]), {"event": event_id})


def _year(staff_id: str, year: int) -> Subject:
    db, tz = get_db(), hospital_tz()
    try:
        found = facts.year_facts(db, facts.year_record(db, staff_id, year, tz), tz)
    except record_exports.NotFound:
        abort(404, description=f"unknown staff member: {staff_id}")
    return Subject("person_year", store.year_subject(staff_id, year), found,
                   f"staff:{staff_id}",
                   _("%(name)s: the year %(year)s", name=found["name"], year=year),
                   {"year": year, "part": "year_summary"})


def _drafts(subject: Subject) -> dict:
    return {lang: store.current(get_db(), subject.kind, subject.subject, lang, subject.facts)
            for lang in LANGS}


def _render(subject: Subject, endpoints: dict, ids: dict, *, back: str, editable: bool,
            error: tuple | None = None, typed: dict | None = None, status: int = 200):
    """The page of ``subject``'s drafts; ``endpoints`` names the save, redraft
    and download views (and ``year``, the whole year's export), ``ids`` their
    arguments."""
    urls = {lang: {"download": {fmt: url_for(endpoints["download"], draft_lang=lang,
                                             doc_fmt=fmt, **ids) for fmt in export.FORMATS}}
            for lang in LANGS}
    if editable:
        for lang in LANGS:
            urls[lang]["save"] = url_for(endpoints["save"], draft_lang=lang, **ids)
            urls[lang]["redraft"] = url_for(endpoints["redraft"], draft_lang=lang, **ids)
    year_files = {fmt: url_for(endpoints["year"], year_fmt=fmt, **ids)
                  for fmt in ("xlsx", "pdf")} if "year" in endpoints else {}
    return render_template("summaries_draft.html", subject=subject, drafts=_drafts(subject),
                           urls=urls, back=back, editable=editable, lang_names=NAMES,
                           error=error, typed=typed or {}, year=ids.get("year"),
                           year_files=year_files, first_year=personal.FIRST_YEAR,
                           last_year=personal.LAST_YEAR), status


def _save(subject: Subject, lang: str, page):
    db = get_db()
    text = request.form.get("text", "")
    try:
        with write_transaction(db):
            store.save(db, subject.kind, subject.subject, lang, text, subject.facts, actor())
            audited("summary.save", subject.target, lang=lang, **subject.detail)
    except DraftError as exc:
        return page(error=(lang, _(exc.message, **exc.params)), typed={lang: text}, status=400)
    flash(_("Draft saved."), "info")
    return None


def _redraft(subject: Subject, lang: str) -> None:
    db = get_db()
    with write_transaction(db):
        store.reset(db, subject.kind, subject.subject, lang)
        audited("summary.redraft", subject.target, lang=lang, **subject.detail)
    flash(_("Redrafted from the data."), "info")


def _download(subject: Subject, lang: str, fmt: str, action: str, stem: tuple):
    current = store.current(get_db(), subject.kind, subject.subject, lang, subject.facts)
    tables = export.tables(subject.kind, current["facts"], lang)
    if fmt == "docx":
        data = export.to_docx(current["text"], tables, subject.heading)
    else:
        data = export.to_markdown(current["text"], tables)
    with write_transaction(get_db()):
        audited(action, subject.target, format=fmt, lang=lang, **subject.detail)
    return personal.download(data, export.MIME[fmt], personal.filename(*stem, lang, fmt))


# -- an event ------------------------------------------------------------------------------

_EVENT = {"save": "summaries.event_save", "redraft": "summaries.event_redraft",
          "download": "summaries.event_download"}


def _event_page(event_id: str, **kwargs):
    return _render(_event(event_id), _EVENT, {"event_id": event_id}, editable=True,
                   back=url_for("pages.event", event_id=event_id), **kwargs)


@bp.get("/events/<event_id>/summary")
@requires("office")
def event(event_id):
    return _event_page(event_id)


@bp.post(f"/events/<event_id>/summary/{LANG}")
@requires("office")
def event_save(event_id, draft_lang):
    failed = _save(_event(event_id), draft_lang,
                   lambda **kwargs: _event_page(event_id, **kwargs))
    return failed or redirect(url_for("summaries.event", event_id=event_id,
                                      _anchor=f"draft-{draft_lang}"), 303)


@bp.post(f"/events/<event_id>/summary/{LANG}/redraft")
@requires("office")
def event_redraft(event_id, draft_lang):
    _redraft(_event(event_id), draft_lang)
    return redirect(url_for("summaries.event", event_id=event_id,
                            _anchor=f"draft-{draft_lang}"), 303)


@bp.get(f"/events/<event_id>/summary/{LANG}.{DOC}")
@requires("office")
def event_download(event_id, draft_lang, doc_fmt):
    return _download(_event(event_id), draft_lang, doc_fmt, "export.summary",
                     ("summary", event_id))


# -- one's own year, another's ---------------------------------------------------------------

_MINE = {"save": "summaries.me_year_save", "redraft": "summaries.me_year_redraft",
         "download": "summaries.me_year_download", "year": "yearbook.me_export"}


def _my_page(**kwargs):
    year = personal.year()
    return _render(_year(personal.own_staff_id(), year), _MINE, {"year": year}, editable=True,
                   back=url_for("people.me"), **kwargs)


@bp.get("/me/year")
@requires(*personal.LINKED)
def me_year():
    return _my_page()


@bp.post(f"/me/year/{LANG}")
@requires(*personal.LINKED)
def me_year_save(draft_lang):
    year = personal.year()
    failed = _save(_year(personal.own_staff_id(), year), draft_lang, _my_page)
    return failed or redirect(url_for("summaries.me_year", year=year,
                                      _anchor=f"draft-{draft_lang}"), 303)


@bp.post(f"/me/year/{LANG}/redraft")
@requires(*personal.LINKED)
def me_year_redraft(draft_lang):
    year = personal.year()
    _redraft(_year(personal.own_staff_id(), year), draft_lang)
    return redirect(url_for("summaries.me_year", year=year, _anchor=f"draft-{draft_lang}"), 303)


@bp.get(f"/me/year/{LANG}.{DOC}")
@requires(*personal.LINKED)
def me_year_download(draft_lang, doc_fmt):
    staff_id, year = personal.own_staff_id(), personal.year()
    return _download(_year(staff_id, year), draft_lang, doc_fmt, "export.person",
                     ("year", staff_id, year))


@bp.get("/people/<staff_id>/year")
@requires("office", "dept_reviewer")
def person_year(staff_id):
    personal.visible_staff(staff_id)
    year = personal.year()
    subject = _year(staff_id, year)
    audited_look("person.view", subject.target, page="year", year=year)
    return _render(subject, {"download": "summaries.person_year_download",
                             "year": "yearbook.person_export"},
                   {"staff_id": staff_id, "year": year}, editable=False,
                   back=url_for("people.person", staff_id=staff_id))


@bp.get(f"/people/<staff_id>/year/{LANG}.{DOC}")
@requires("office", "dept_reviewer")
def person_year_download(staff_id, draft_lang, doc_fmt):
    personal.visible_staff(staff_id)
    year = personal.year()
    return _download(_year(staff_id, year), draft_lang, doc_fmt, "export.person",
                     ("year", staff_id, year))
