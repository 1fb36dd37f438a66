"""Every translatable call is one that any Babel release extracts alike.

Babel's Python extractor reads the string literals inside a marker call;
releases differ on what they make of anything else there (older ones took
``"status"`` out of ``_(LABELS[r["status"]])`` as a message; 2.19 skips
f-strings with substitutions and warns). So an argument of ``_``/``_l``/
``N_``/``gettext``/... is a plain string literal, another marker call
(``_(N_("yes"))``), or an expression with no string in it; placeholders are
filled with values computed before the call, never with f-strings."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "hub", "protocol", "provisioning")
MARKERS = {"_", "_l", "N_", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext",
           "pgettext", "lazy_pgettext", "npgettext"}


def _is_marker(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in MARKERS)


def _has_string(node) -> bool:
    return any(isinstance(n, ast.JoinedStr)
               or (isinstance(n, ast.Constant) and isinstance(n.value, str))
               for n in ast.walk(node))


def problems_in(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not _is_marker(node):
            continue
        for arg in node.args:
            plain = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            if not plain and not _is_marker(arg) and _has_string(arg):
                found.append(f"{name}:{node.lineno}: string inside a computed argument: "
                             f"{ast.unparse(node)}")
        for keyword in node.keywords:
            if any(isinstance(n, ast.JoinedStr) for n in ast.walk(keyword.value)):
                found.append(f"{name}:{node.lineno}: f-string as placeholder value: "
                             f"{ast.unparse(node)}")
    return found


def test_the_check_finds_what_babel_reads_differently():
    bad = 'x = _(LABELS[r["status"]])\ny = _("%(n)s h", n=f"{h:g}")\nz = _(f"hi {name}")\n'
    assert len(problems_in(bad, "bad.py")) == 3
    good = 'x = _("Save")\ny = _(N_("yes"))\nz = _(label)\nw = _("%(n)s h", n=hours)\n'
    assert problems_in(good, "good.py") == []


def test_no_translatable_call_depends_on_the_extractor_version():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found += problems_in(path.read_text(), str(path.relative_to(ROOT)))
    assert found == []
