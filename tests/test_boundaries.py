"""The folders keep their word, checked on the import graph (the AST of
every module, so an import hidden in a function counts too):

- ``edge`` and ``hub`` never import each other; what both must agree on is
  in ``protocol`` (pure) and ``runtime`` (shared I/O);
- ``protocol`` does no I/O: it imports only itself and pure modules;
- ``hub.db`` (the hub's tables) is imported only inside the hub; the
  facilities team's tools reach the hub through ``hub.fleet.registry``, and the hub
  imports neither them nor the demo (which drives both);
- no import inside a function to get round a cycle. Only the command-line
  modules load a command's own dependencies when that command runs (a node's
  ``rounds-edge portal`` should not load OpenCV or scapy), and a module may
  load an optional heavy third-party library where it is used.

And on the source text: ``hub.web`` runs no SQL (it calls the areas'
functions; ``hub/web/context.py`` only opens and closes the connection), and
the ``photos`` table is read and written by ``hub.ingest.photos`` alone.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("demo", "edge", "hub", "protocol", "provisioning", "runtime")
# What protocol may import: itself, and modules that compute without I/O.
PURE = {"__future__", "base64", "binascii", "collections", "dataclasses", "datetime", "enum",
        "functools", "hashlib", "hmac", "itertools", "json", "math", "msgspec", "operator",
        "re", "secrets", "string", "typing", "uuid"}
CLI_MODULES = {"cli", "cli_export", "cli_roster", "cli_support"}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    inner = {id(node) for fn in ast.walk(tree)
             if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for node in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in inner) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((target, id(node) in inner))
            # ``from . import x`` / ``from hub import db``: x may be a module
            found += [(f"{target}.{alias.name}", id(node) in inner) for alias in node.names]
    return found


def top(module: str) -> str:
    return module.split(".")[0]


GRAPH = {name: imports(name, path) for name, path in modules().items()}


def test_the_graph_is_read():
    assert {"hub.ingest.subscriber", "edge.sync", "protocol.records", "runtime.sqlite"} <= set(GRAPH)
    assert ("hub.db", False) in GRAPH["hub.ingest.subscriber"] or ("hub.db.ingest_writer", False) in \
        GRAPH["hub.ingest.subscriber"]


def test_edge_and_hub_never_import_each_other():
    crossing = [(name, target) for name, found in GRAPH.items() for target, _ in found
                if {top(name), top(target)} == {"edge", "hub"}]
    assert crossing == []


def test_protocol_is_pure():
    impure = [(name, target) for name, found in GRAPH.items() if top(name) == "protocol"
              for target, _ in found
              if top(target) != "protocol" and top(target) not in PURE
              and not (target.startswith("msgspec"))]
    assert impure == []


def test_only_the_hub_opens_the_hubs_tables():
    """(The demo seeds a hub's three months of history straight into its
    database, as the tests do: it is a stand-in for time, not a client.)"""
    outside = [(name, target) for name, found in GRAPH.items() if top(name) not in ("hub", "demo")
               for target, _ in found if target == "hub.db" or target.startswith("hub.db.")]
    assert outside == []


def test_the_hub_imports_neither_provisioning_nor_the_demo():
    found = [(name, target) for name, found in GRAPH.items() if top(name) == "hub"
             for target, _ in found if top(target) in ("provisioning", "demo")]
    assert found == []


def test_no_import_inside_a_function_but_a_commands_own():
    ours = set(PACKAGES)
    hidden = [(name, target) for name, found in GRAPH.items() for target, inner in found
              if inner and top(target) in ours and name.rpartition(".")[2] not in CLI_MODULES]
    assert hidden == []


def test_every_imported_module_of_ours_exists():
    """The check above would miss a misspelt module; so would Python, until run."""
    known = set(GRAPH)
    missing = []
    for name, found in GRAPH.items():
        for target, _ in found:
            if top(target) in PACKAGES and target not in known:
                parent = target.rpartition(".")[0]  # ``from x import name``: a name in x
                if parent not in known:
                    missing.append((name, target))
    assert missing == [], missing


def lines_matching(paths, pattern: re.Pattern) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for path in paths
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if pattern.search(line)]


SQL = re.compile(r"SELECT |INSERT |UPDATE |DELETE FROM|\.execute\(|\bdb\[")
PHOTOS_SQL = re.compile(r"\bFROM photos\b|\bINTO photos\b|\bUPDATE photos\b"
                        r"|\bdb\[[\"']photos[\"']\]")


def test_the_web_modules_run_no_sql():
    web = [path for path in sorted((ROOT / "hub" / "web").rglob("*.py"))
           if path != ROOT / "hub" / "web" / "context.py"]
    assert len(web) > 10 and lines_matching([ROOT / "hub" / "tickets" / "tickets.py"], SQL)
    assert lines_matching(web, SQL) == []


def test_only_hub_ingest_photos_touches_the_photos_table():
    """hub/db.py's migration makes the table; no other module reads or writes it."""
    allowed = {ROOT / "hub" / "ingest" / "photos.py", ROOT / "hub" / "db.py"}
    others = [path for path in sorted((ROOT / "hub").rglob("*.py")) if path not in allowed]
    assert lines_matching(others, PHOTOS_SQL) == []
    assert lines_matching([ROOT / "hub" / "ingest" / "photos.py"], PHOTOS_SQL)
