"""The node's stored documents (edge/state.py): parsed once per stored version
and per process, current as soon as another connection stores a new one, and
never read whole again while unchanged (the roster is hundreds of kB)."""

import sqlite3

from edge.db import open_db
from edge.state import ROSTER, NodeState


def roster(version: str, people: int = 3) -> dict:
    return {"version": version,
            "staff": [{"staff_id": f"S{i}", "name": f"{version}-{i}"} for i in range(people)],
            "bindings": [{"device": f"d{i}", "staff_id": f"S{i}"} for i in range(people)]}


def statements(db) -> list[str]:
    seen = []
    db.conn.set_trace_callback(seen.append)
    return seen


def test_another_connection_storing_a_document_is_seen_at_once(tmp_path):
    reader, writer = open_db(tmp_path / "node.db"), open_db(tmp_path / "node.db")
    NodeState(writer).put(ROSTER, roster("v1"))
    state = NodeState(reader)
    assert state.staff("S1")["name"] == "v1-1"
    assert state.bound_staff("d2") == "S2"
    NodeState(writer).put(ROSTER, roster("v2", people=2))
    assert state.staff("S1")["name"] == "v2-1"
    assert state.staff("S2") is None and state.bound_staff("d2") is None
    writer.conn.execute("DELETE FROM kv WHERE key = ?", (ROSTER,))
    assert state.get(ROSTER) is None and state.staff("S1") is None


def test_an_unchanged_document_is_not_read_again(tmp_path):
    db = open_db(tmp_path / "node.db")
    NodeState(db).put(ROSTER, roster("v1", people=2000))
    state = NodeState(db)
    first = state.get(ROSTER)
    seen = statements(db)
    assert state.get(ROSTER) is first
    assert state.staff("S1999")["name"] == "v1-1999"
    assert seen and not [s for s in seen if "value" in s], seen


def test_two_databases_in_one_process_do_not_share_a_parsed_copy(tmp_path):
    a, b = open_db(tmp_path / "a.db"), open_db(tmp_path / "b.db")
    NodeState(a).put(ROSTER, roster("a"))
    NodeState(b).put(ROSTER, roster("b"))
    assert NodeState(a).staff("S0")["name"] == "a-0"
    assert NodeState(b).staff("S0")["name"] == "b-0"
    assert NodeState(a).staff("S0")["name"] == "a-0"


def test_documents_stored_before_the_etag_get_one(tmp_path):
    path = tmp_path / "old.db"
    db = open_db(path)
    NodeState(db).put(ROSTER, roster("v1"))
    db.close()
    conn = sqlite3.connect(path)      # as a node before m011 left it
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm011_kv_etag'")
    conn.execute("CREATE TABLE kv_old (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO kv_old SELECT key, value FROM kv")
    conn.execute("DROP TABLE kv")
    conn.execute("ALTER TABLE kv_old RENAME TO kv")
    conn.commit()
    conn.close()
    db = open_db(path)
    assert [c.name for c in db["kv"].columns] == ["key", "etag", "value"]
    (etag,) = db.conn.execute("SELECT etag FROM kv WHERE key = ?", (ROSTER,)).fetchone()
    assert len(etag) == 16
    assert NodeState(db).staff("S2")["name"] == "v1-2"
