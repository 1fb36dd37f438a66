"""A draft (as edited, hub.summaries.store) written as DOCX (python-docx) or
Markdown, with its tables from the facts it goes with: an event's attendees
by department (after the attendance section), a person's assessment
progress (after the assessment section); a table whose section was edited
away comes at the end under its own heading.

The text's little Markdown (hub.summaries.draft) becomes DOCX headings
(``# `` level 1, ``## `` level 2), bulleted paragraphs (``- ``) and
paragraphs (lines between blank lines, line breaks kept).
"""

import io
from dataclasses import dataclass, field

from hub.summaries.draft import num

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MD_MIME = "text/markdown; charset=utf-8"
MIME = {"docx": DOCX_MIME, "md": MD_MIME}
FORMATS = tuple(MIME)
EAST_ASIAN_FONT = "SimSun"  # what Word shows Chinese in (宋体); Latin text keeps the theme's


@dataclass
class Table:
    anchor: str  # the heading (without #) the table follows
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


_WORDS = {
    "zh": {"attendance": "出席情况", "by_department": "各科室出席人数", "department": "科室",
           "attended": "出席人数", "total": "合计", "none": "（未登记科室）",
           "assessment": "考核进度", "progress": "考核进度表", "item": "考核项目",
           "confirmed": "已确认", "pending": "待审核", "target": "目标", "done": "完成情况",
           "yes": "已完成", "no": "未完成"},
    "en": {"attendance": "Attendance", "by_department": "Attendees by department",
           "department": "Department", "attended": "Attended", "total": "Total",
           "none": "(no department)", "assessment": "Assessment",
           "progress": "Assessment progress", "item": "Item", "confirmed": "Confirmed",
           "pending": "Pending review", "target": "Target", "done": "Done", "yes": "done",
           "no": "not done yet"},
}


def tables(kind: str, facts: dict, lang: str) -> list[Table]:
    """The tables of a draft, in ``lang``, from its facts."""
    w = _WORDS[lang]
    name = "name_en" if lang == "en" else "name"
    if kind == "event":
        table = Table(w["attendance"], w["by_department"], [w["department"], w["attended"]])
        table.rows = [[d[name] if d["department"] else w["none"], num(d["attended"])]
                      for d in facts["by_department"]]
        table.rows.append([w["total"], num(facts["attended"])])
        return [table]
    if not facts["assessment"]:
        return []
    title = "title_en" if lang == "en" else "title"
    table = Table(w["assessment"], w["progress"],
                  [w["item"], w["confirmed"], w["pending"], w["target"], w["done"]])
    table.rows = [[i[title], num(i["confirmed"]), num(i["pending"]), num(i["target"]),
                   w["yes"] if i["done"] else w["no"]] for i in facts["assessment"]]
    return [table]


def _heading(line: str) -> tuple[int, str] | None:
    for level, mark in ((2, "## "), (1, "# ")):
        if line.startswith(mark):
            return level, line[len(mark):].strip()
    return None


def placed(text: str, found: list[Table]) -> list:
    """The text's lines with each table (``Table``) where it goes."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    items: list = list(lines)
    for table in found:
        at = next((n for n, line in enumerate(items) if isinstance(line, str)
                   and (_heading(line) or (0, None))[1] == table.anchor), None)
        if at is None:
            items += ["", f"## {table.title}", "", table]
            continue
        end = next((n for n in range(at + 1, len(items)) if isinstance(items[n], str)
                    and _heading(items[n])), len(items))
        before = [] if end and items[end - 1] == "" else [""]
        items[end:end] = before + ([table, ""] if end < len(items) else [table])
    return items


# -- Markdown ----------------------------------------------------------------------------

def _cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(text: str, found: list[Table]) -> bytes:
    out = []
    for item in placed(text, found):
        if isinstance(item, Table):
            out.append("| " + " | ".join(_cell(h) for h in item.headers) + " |")
            out.append("|" + "---|" * len(item.headers))
            out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in item.rows]
        else:
            out.append(item)
    return ("\n".join(out) + "\n").encode("utf-8")


# -- DOCX --------------------------------------------------------------------------------

def _east_asian(style) -> None:
    from docx.oxml.ns import qn

    fonts = style.element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), EAST_ASIAN_FONT)


def _docx_table(document, table: Table) -> None:
    grid = document.add_table(rows=1, cols=len(table.headers))
    grid.style = "Table Grid"
    for cell, header in zip(grid.rows[0].cells, table.headers):
        cell.text = ""
        cell.paragraphs[0].add_run(header).bold = True
    for row in table.rows:
        for cell, value in zip(grid.add_row().cells, row):
            cell.text = str(value)


def to_docx(text: str, found: list[Table], title: str | None = None) -> bytes:
    """The draft as a Word document (``title``: its core property)."""
    from docx import Document

    document = Document()
    for style in ("Normal", "Title", "Heading 1", "Heading 2", "List Bullet"):
        _east_asian(document.styles[style])
    if title:
        document.core_properties.title = title
    paragraph: list[str] = []

    def flush():
        if paragraph:
            document.add_paragraph("\n".join(paragraph))
            paragraph.clear()

    for item in placed(text, found):
        if isinstance(item, Table):
            flush()
            _docx_table(document, item)
            continue
        heading = _heading(item)
        if heading or not item.strip() or item.startswith("- "):
            flush()
        if heading:
            document.add_heading(heading[1], level=heading[0])
        elif item.startswith("- "):
            document.add_paragraph(item[2:].strip(), style="List Bullet")
        elif item.strip():
            paragraph.append(item.rstrip())
    flush()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
