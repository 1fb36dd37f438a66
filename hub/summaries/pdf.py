"""Printable PDFs (fpdf2, its text embedded with a subset of a TrueType font
that has Chinese characters): a person's year report, the same sheets as
the XLSX one after the other (A4 landscape, a table each), and a one-page
A4 certificate of attendance.

The font is the first of ``FONTS`` found (Debian's fonts-wqy-microhei, which
``make system-deps`` installs, first); with none, ``FontMissing`` says what
to install. Words go through ``translate`` (the web gives gettext).
"""

from datetime import datetime
from pathlib import Path

from hub.attendance.exports import TIME_FORMAT, Sheet
from hub.summaries.draft import num

N_ = str  # marks a message for extraction; translated where it is shown

FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
         "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
         "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
         "/usr/share/fonts/truetype/arphic/uming.ttc")
MIME = "application/pdf"
FAMILY = "cjk"
GREY = (90, 90, 90)


class FontMissing(RuntimeError):
    """No font with Chinese characters on this machine."""


def font_path(candidates=FONTS) -> str:
    for path in candidates:
        if Path(path).is_file():
            return str(path)
    raise FontMissing("no font with Chinese characters for PDFs: install Debian's "
                      "fonts-wqy-microhei (make system-deps); looked for " + ", ".join(candidates))


def _identity(text: str) -> str:
    return text


def _document(orientation: str, title: str, author: str):
    from fpdf import FPDF

    class Document(FPDF):
        def footer(self):
            self.set_y(-12)
            self.set_font(FAMILY, size=8)
            self.set_text_color(*GREY)
            self.cell(0, 6, f"{author} · {self.page_no()}/{{nb}}", align="C")

    pdf = Document(orientation=orientation, unit="mm", format="A4")
    pdf.add_font(FAMILY, fname=font_path())
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("Rounds")
    pdf.set_auto_page_break(True, margin=16)
    return pdf


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime(TIME_FORMAT)[:-3]
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return num(value)
    return str(value)


def _table(pdf, sheet: Sheet, empty: str) -> None:
    from fpdf.enums import WrapMode
    from fpdf.fonts import FontFace

    pdf.set_font(FAMILY, size=13)
    pdf.set_text_color(31, 95, 139)
    pdf.cell(0, 9, sheet.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(FAMILY, size=7 if len(sheet.headers) > 6 else 9)
    if not sheet.rows:
        pdf.set_text_color(*GREY)
        pdf.cell(0, 6, empty, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    else:
        heading = FontFace(emphasis=None, fill_color=(230, 236, 242))
        with pdf.table(headings_style=heading, text_align="LEFT", wrapmode=WrapMode.WORD,
                       line_height=pdf.font_size * 1.6,
                       width=None if len(sheet.headers) > 2 else 140, align="LEFT") as table:
            for row in [sheet.headers] + sheet.rows:
                cells = table.row()
                for value in row:
                    cells.cell(_text(value))
    pdf.ln(5)


def year_report(sheets: list[Sheet], *, hospital: str, title: str, translate=_identity) -> bytes:
    """The sheets (hub.summaries.yearbook.year_sheets) as a printable report."""
    _ = translate
    pdf = _document("L", title, hospital)
    pdf.add_page()
    pdf.set_font(FAMILY, size=11)
    pdf.set_text_color(*GREY)
    pdf.cell(0, 7, hospital, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(FAMILY, size=18)
    pdf.cell(0, 12, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for sheet in sheets:
        _table(pdf, sheet, _(N_("Nothing in this year.")))
    return bytes(pdf.output())


def _centred(pdf, size: float, text: str, height: float, grey: bool = False) -> None:
    pdf.set_font(FAMILY, size=size)
    pdf.set_text_color(*(GREY if grey else (0, 0, 0)))
    pdf.multi_cell(0, height, text, align="C", new_x="LMARGIN", new_y="NEXT")


def certificate(cert: dict, *, hospital: str, department: str, place: str, issued: str,
                translate=_identity) -> bytes:
    """One A4 page: the certificate of attendance ``cert``
    (hub.summaries.yearbook.certificate) in the reader's language."""
    _ = translate
    staff, event = cert["staff"], cert["event"]
    pdf = _document("P", _(N_("Certificate of attendance")) + f" {cert['number']}", hospital)
    pdf.add_page()
    pdf.set_draw_color(31, 95, 139)
    pdf.set_line_width(1.2)
    pdf.rect(12, 12, 186, 273)
    pdf.set_line_width(0.3)
    pdf.rect(15, 15, 180, 267)
    pdf.set_y(40)
    _centred(pdf, 20, hospital, 11)
    pdf.ln(6)
    _centred(pdf, 30, _(N_("Certificate of attendance")), 16)
    pdf.ln(16)
    _centred(pdf, 24, staff["name"], 13)
    who = _(N_("Staff number %(staff_id)s")) % {"staff_id": staff["staff_id"]}
    _centred(pdf, 12, who + (f" · {department}" if department else ""), 8, grey=True)
    pdf.ln(10)
    _centred(pdf, 14, _(N_("attended")), 9)
    pdf.ln(4)
    _centred(pdf, 20, event["title"], 11)
    pdf.ln(4)
    when = f"{event['date']} {event['start_time']}–{event['end_time']}"
    _centred(pdf, 13, when + (f" · {place}" if place else ""), 8)
    pdf.ln(8)
    hours = _(N_("Credit hours: %(hours)s")) % {"hours": num(cert["credit_hours"])}
    _centred(pdf, 15, hours, 9)
    pdf.set_y(235)
    _centred(pdf, 11, _(N_("Certificate number: %(number)s")) % {"number": cert["number"]},
             7, grey=True)
    _centred(pdf, 11, _(N_("Issued on %(date)s")) % {"date": issued}, 7, grey=True)
    return bytes(pdf.output())
