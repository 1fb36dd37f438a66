"""First drafts written from templates over the facts (hub.summaries.facts),
in zh-CN (``zh``) and English (``en``): no free generation, so the figures
are right by construction, every number in the text being formatted from a
value of the facts.

A draft is plain text in a little Markdown: ``# `` the title, ``## `` a
section, ``- `` a list item, paragraphs between blank lines (what
hub.summaries.export turns into DOCX headings, lists and paragraphs).

``check(text, facts)`` re-extracts every number from a text (a draft, or one
edited on the hub) and answers those that are not one of the facts'
numbers: the numeric values anywhere in the facts, and the numbers inside
the texts the draft quotes (titles, names, dates, times: ``TEXT_KEYS``).
"""

import re
import unicodedata

LANGS = ("zh", "en")
TEXT_KEYS = frozenset({"title", "title_en", "name", "name_en", "date", "start_time", "end_time",
                       "as_of_date", "as_of_time", "performers", "label", "staff_id"})
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

KINDS = {"lecture": ("讲座", "lecture"), "training": ("培训", "training"),
         "meeting": ("会议", "meeting"), "volunteer_duty": ("志愿服务", "volunteer duty"),
         "contest": ("竞赛", "contest")}
# the seeded report categories (hub.db); another keeps its stored label
CATEGORIES = {"hygiene": "环境卫生", "facilities": "设施报修", "safety": "安全隐患",
              "signage": "标识标牌", "service": "服务态度", "queue": "排队秩序"}
ENTRY_KINDS = {"good_deed": ("好人好事", "good deeds"),
               "thanks_letter": ("患者感谢信", "patients' thank-you letters"),
               "complaint": ("投诉", "complaints"),
               "study_reflection": ("学习心得", "study reflections"),
               "volunteering": ("院外志愿服务", "volunteering outside the hospital"),
               "attendance": ("活动出席", "events attended"),
               "volunteer_hours": ("志愿时长", "volunteer hours"),
               "report": ("上报被采纳", "accepted reports")}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def num(value) -> str:
    """A figure as written: 12, 1.5, 83.3 (at most two decimals, no trailing zeros)."""
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _key(text: str) -> float:
    return round(float(text), 6)


def numbers_in(text: str) -> list[str]:
    """Every number written in ``text`` (full-width digits too), in order."""
    return _NUMBER.findall(unicodedata.normalize("NFKC", text or ""))


def fact_numbers(facts, key: str | None = None) -> set[float]:
    """Every number the facts hold (see the module docstring)."""
    found: set[float] = set()
    if isinstance(facts, bool) or facts is None:
        return found
    if isinstance(facts, (int, float)):
        found.add(round(float(facts), 6))
    elif isinstance(facts, str):
        if key in TEXT_KEYS:
            found.update(_key(n) for n in numbers_in(facts))
    elif isinstance(facts, dict):
        for name, value in facts.items():
            found |= fact_numbers(value, name)
    elif isinstance(facts, (list, tuple)):
        for value in facts:
            found |= fact_numbers(value, key)
    return found


def check(text: str, facts: dict) -> list[str]:
    """The numbers of ``text`` that are none of the facts' (empty: all true)."""
    known = fact_numbers(facts)
    return [n for n in numbers_in(text) if _key(n) not in known]


def _name(thing: dict, lang: str) -> str:
    return thing["name_en"] if lang == "en" else thing["name"]


def _category(row: dict, lang: str) -> str:
    if lang == "zh" and row["category"] in CATEGORIES:
        return CATEGORIES[row["category"]]
    return row["label"]


def _people(n: int) -> str:
    return f"{num(n)} {'person' if n == 1 else 'people'}"


def _english_day(f: dict) -> str:
    return f"{num(f['day'])} {MONTHS[f['month'] - 1]} {num(f['year'])}"


# -- an event ------------------------------------------------------------------------------

def _event_zh(f: dict) -> list[str]:
    kind = KINDS.get(f["event_kind"], (f["event_kind"],))[0]
    place = "、".join(_name(p, "zh") for p in f["place"])
    lines = [f"# {f['title']}活动总结", "",
             f"{num(f['year'])}年{num(f['month'])}月{num(f['day'])}日 {f['start_time']}–"
             f"{f['end_time']}，{f['organiser']['name']}"
             + (f"在{place}" if place else "") + f"组织开展了“{f['title']}”{kind}活动"
             + (f"，计 {num(f['credit_hours'])} 学时" if f["credit_hours"] else "") + "。",
             "", "## 出席情况", ""]
    text = f"本次活动共 {num(f['attended'])} 人出席"
    if f["partial"]:
        text += f"，另有 {num(f['partial'])} 人部分出席"
    if f["by_department"]:
        text += "。按科室：" + "、".join(f"{_name(d, 'zh')} {num(d['attended'])} 人"
                                       for d in f["by_department"])
    lines.append(text + "。")
    rate = f["rate"]
    if rate:
        basis = "报名" if rate["basis"] == "registration" else "应到"
        lines += ["", f"本次活动{basis} {num(rate['base'])} 人，其中 {num(rate['attended'])} 人"
                      f"出席，出席率 {num(rate['percent'])}%。"]
    if f["contest"]:
        lines += ["", "## 比赛结果", ""]
        lines += [f"- 第 {num(r['rank'])} 名：{r['title']}"
                  + (f"（{r['performers']}）" if r["performers"] else "")
                  + f"，得分 {num(r['total'])}" for r in f["contest"]]
    reports = f["reports"]
    lines += ["", "## 现场上报", ""]
    if reports["total"]:
        lines.append(f"活动期间，活动区域共收到随手拍上报 {num(reports['total'])} 条："
                     + "、".join(f"{_category(r, 'zh')} {num(r['count'])} 条"
                                for r in reports["by_category"]) + "。")
    else:
        lines.append("活动期间，活动区域未收到随手拍上报。")
    until = "" if f["ended"] else f"，截至 {f['as_of_date']} {f['as_of_time']}，活动仍在进行"
    lines += ["", f"（以上数据由 Rounds 根据考勤记录整理{until}。）"]
    return lines


def _event_en(f: dict) -> list[str]:
    kind = KINDS.get(f["event_kind"], (None, f["event_kind"]))[1]
    place = ", ".join(_name(p, "en") for p in f["place"])
    lines = [f"# {f['title']}: summary of the event", "",
             f"Organised by {f['organiser']['name_en']}, “{f['title']}” ({kind}) took place on "
             f"{_english_day(f)}, {f['start_time']}–{f['end_time']}"
             + (f", in {place}" if place else "")
             + (f", worth {num(f['credit_hours'])} credit hours" if f["credit_hours"] else "")
             + ".", "", "## Attendance", ""]
    text = f"{_people(f['attended'])} attended"
    if f["partial"]:
        text += f"; {num(f['partial'])} more attended part of it"
    if f["by_department"]:
        text += ". By department: " + ", ".join(f"{_name(d, 'en')} {num(d['attended'])}"
                                                for d in f["by_department"])
    lines.append(text + ".")
    rate = f["rate"]
    if rate:
        basis = "registered" if rate["basis"] == "registration" else "were expected"
        lines += ["", f"{_people(rate['base'])} {basis} and {num(rate['attended'])} of them "
                      f"attended: an attendance rate of {num(rate['percent'])}%."]
    if f["contest"]:
        lines += ["", "## Contest results", ""]
        lines += [f"- Rank {num(r['rank'])}: {r['title']}"
                  + (f" ({r['performers']})" if r["performers"] else "")
                  + f", score {num(r['total'])}" for r in f["contest"]]
    reports = f["reports"]
    lines += ["", "## Reports filed", ""]
    if reports["total"]:
        lines.append(f"During the event, {num(reports['total'])} "
                     f"{'report was' if reports['total'] == 1 else 'reports were'} filed in its "
                     "zones: " + ", ".join(f"{_category(r, 'en')} {num(r['count'])}"
                                           for r in reports["by_category"]) + ".")
    else:
        lines.append("No reports were filed in the event's zones during it.")
    until = "" if f["ended"] else (f", as of {f['as_of_date']} {f['as_of_time']}, while the "
                                   "event is still on")
    lines += ["", f"(Figures drafted by Rounds from the attendance records{until}.)"]
    return lines


# -- a person's year -----------------------------------------------------------------------

def _year_zh(f: dict) -> list[str]:
    dept = _name(f["department"], "zh")
    lines = [f"# {f['name']} {num(f['year'])} 年度个人小结（初稿）", "",
             f"{f['name']}（工号 {f['staff_id']}" + (f"，{dept}" if dept else "")
             + f"）{num(f['year'])} 年的记录如下，供年度自评参考。", "", "## 参加活动", "",
             f"全年出席活动 {num(f['attended'])} 次"
             + (f"（另有部分出席 {num(f['partial'])} 次）" if f["partial"] else "")
             + f"，获得学时 {num(f['credit_hours'])}。"]
    if f["events"]:
        lines.append("")
        lines += [f"- {e['date']} {e['title']}（{num(e['credit_hours'])} 学时）"
                  for e in f["events"]]
    lines += ["", "## 志愿服务与随手拍", "",
              f"经审核通过的志愿时长 {num(f['volunteer_hours'])} 小时；随手拍上报 "
              f"{num(f['reports'])} 条，其中被采纳 {num(f['reports_accepted'])} 条。",
              "", "## 档案记录", ""]
    if f["entries"]:
        lines.append(f"经审核通过的档案记录 {num(f['entries'])} 条："
                     + "、".join(f"{ENTRY_KINDS.get(k['kind'], (k['kind'],))[0]} "
                                f"{num(k['count'])} 条" for k in f["entries_by_kind"]) + "。")
    else:
        lines.append("本年度暂无经审核通过的档案记录。")
    if f["assessment"]:
        lines += ["", "## 考核进度", ""]
        lines += [f"- {i['title']}：已确认 {num(i['confirmed'])}，待审核 {num(i['pending'])}，"
                  f"目标 {num(i['target'])}，{'已完成' if i['done'] else '未完成'}"
                  for i in f["assessment"]]
        lines += ["", f"全年 {num(f['items'])} 项考核中已完成 {num(f['items_done'])} 项。"]
    lines += ["", "## 自我评价", "", "（请在此补充本人的工作表现、体会与不足。）"]
    return lines


def _year_en(f: dict) -> list[str]:
    dept = _name(f["department"], "en")
    lines = [f"# {f['name']}: the year {num(f['year'])} (draft)", "",
             f"The record of {f['name']} (staff number {f['staff_id']}"
             + (f", {dept}" if dept else "")
             + f") for {num(f['year'])}, to start the annual self-assessment.", "",
             "## Events attended", "",
             f"Attended {num(f['attended'])} {'event' if f['attended'] == 1 else 'events'}"
             + (f" (and part of {num(f['partial'])} more)" if f["partial"] else "")
             + f", earning {num(f['credit_hours'])} credit hours."]
    if f["events"]:
        lines.append("")
        lines += [f"- {e['date']} {e['title']} ({num(e['credit_hours'])} credit hours)"
                  for e in f["events"]]
    lines += ["", "## Volunteering and reports", "",
              f"Volunteer hours approved: {num(f['volunteer_hours'])}. Reports filed: "
              f"{num(f['reports'])}, of which {num(f['reports_accepted'])} accepted.",
              "", "## The staff record", ""]
    if f["entries"]:
        lines.append(f"Approved record entries: {num(f['entries'])} ("
                     + ", ".join(f"{ENTRY_KINDS.get(k['kind'], (None, k['kind']))[1]} "
                                 f"{num(k['count'])}" for k in f["entries_by_kind"]) + ").")
    else:
        lines.append("No approved record entries this year yet.")
    if f["assessment"]:
        lines += ["", "## Assessment", ""]
        lines += [f"- {i['title_en']}: {num(i['confirmed'])} confirmed, {num(i['pending'])} "
                  f"pending review, target {num(i['target'])}, "
                  f"{'done' if i['done'] else 'not done yet'}" for i in f["assessment"]]
        lines += ["", f"Done: {num(f['items_done'])} of {num(f['items'])} items."]
    lines += ["", "## Self-assessment", "",
              "(Add your own account of the year here: what went well, what to improve.)"]
    return lines


WRITERS = {("event", "zh"): _event_zh, ("event", "en"): _event_en,
           ("person_year", "zh"): _year_zh, ("person_year", "en"): _year_en}


def write(kind: str, facts: dict, lang: str) -> str:
    """The draft of ``kind`` (``event`` or ``person_year``) in ``lang``."""
    return "\n".join(WRITERS[(kind, lang)](facts)) + "\n"
