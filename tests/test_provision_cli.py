"""The ``rounds-provision`` command line: every command documented with an
example and named in the README; zones; errors as messages, not tracebacks."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hub.db import open_db
from provisioning.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def commands(command, path):
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, path + [name])


ALL = dict(commands(main, ["rounds-provision"]))


def test_the_command_tree_is_what_the_readme_describes():
    assert {"rounds-provision site init", "rounds-provision zone add",
            "rounds-provision zone list", "rounds-provision node add",
            "rounds-provision node list", "rounds-provision node revoke",
            "rounds-provision node replace", "rounds-provision render-node"} <= set(ALL)


@pytest.mark.parametrize("path", ALL)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(main, path.split()[1:] + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "rounds-provision" in result.output.split(
        "Example:")[1], f"{path} lacks an Example:"


@pytest.mark.parametrize("path", ALL)
def test_every_command_appears_in_the_readme(path):
    assert path in README.read_text(), f"README.md does not mention `{path}`"


def run(site_dir, *args, ok=True, env=None):
    argv = (["--site-dir", str(site_dir)] if site_dir else []) + [str(a) for a in args]
    result = CliRunner().invoke(main, argv, env=env)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def site_dir(tmp_path):
    directory = tmp_path / "site"
    run(directory, "site", "init", "--site", "test", "--name", "Test", "--hub-host",
        "hub.rounds.test", "--hub-db", tmp_path / "hub.db")
    return directory


def zones(tmp_path):
    db = open_db(tmp_path / "hub.db")
    try:
        return {row["zone"]: row for row in db.query("SELECT * FROM zones")}
    finally:
        db.close()


def test_zone_add_then_update_then_list(site_dir, tmp_path):
    result = run(site_dir, "zone", "add", "ward-3", "--name", "Ward 3", "--campus", "main",
                 "--building", "B", "--floor", "3", "--lat", "31.2", "--lon", "121.4")
    assert "Zone ward-3 added." in result.output
    row = zones(tmp_path)["ward-3"]
    assert (row["name"], row["campus"], row["building"], row["floor"], row["lat"],
            row["lon"]) == ("Ward 3", "main", "B", "3", 31.2, 121.4)
    result = run(site_dir, "zone", "add", "ward-3", "--name", "Ward Three")
    assert "Zone ward-3 updated." in result.output
    row = zones(tmp_path)["ward-3"]
    assert (row["name"], row["campus"], row["floor"]) == ("Ward Three", "main", "3")
    run(site_dir, "zone", "add", "hall-a", "--name", "Lecture hall A")
    lines = run(site_dir, "zone", "list").output.splitlines()
    assert lines[0].split() == ["zone", "name", "campus", "building", "floor", "lat", "lon"]
    assert [line.split()[0] for line in lines[1:]] == ["hall-a", "ward-3"]
    assert "Ward Three" in lines[2] and "31.2" in lines[2]


@pytest.mark.parametrize("args, message", [
    (["Ward 3", "--name", "x"], "slug"),
    (["--name", "x", "--", "-ward"], "slug"),
    (["ward-3", "--name", "  "], "--name"),
    (["ward-3", "--name", "x", "--lat", "91", "--lon", "0"], "--lat"),
    (["ward-3", "--name", "x", "--lat", "30"], "--lat and --lon go together"),
])
def test_bad_zones_are_refused(site_dir, tmp_path, args, message):
    result = run(site_dir, "zone", "add", *args, ok=False)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert zones(tmp_path) == {}


def test_site_dir_comes_from_the_environment(site_dir):
    result = run(None, "zone", "add", "ward-3", "--name", "Ward 3",
                 env={"ROUNDS_SITE_DIR": str(site_dir)})
    assert "added" in result.output


def test_commands_without_a_site_say_what_to_do(tmp_path):
    for args in (["node", "list"], ["zone", "list"], ["node", "add", "n1", "--zone", "z"],
                 ["node", "revoke", "n1"]):
        result = run(tmp_path / "nowhere", *args, ok=False)
        assert result.exit_code == 1, args
        assert "run `rounds-provision site init` first" in result.output, result.output
    assert not (tmp_path / "nowhere").exists()


def test_a_hall_node_needs_its_interface(site_dir):
    run(site_dir, "zone", "add", "hall-a", "--name", "Hall A")
    result = run(site_dir, "node", "add", "h1", "--zone", "hall-a", "--shape", "hall", ok=False)
    assert result.exit_code == 1 and "--interface" in result.output
    result = run(site_dir, "node", "add", "h1", "--zone", "hall-a", "--shape", "hall",
                 "--interface", "eth0.42", "--uplink", "intranet", ok=False)
    assert result.exit_code == 1 and "network.upstream_dns" in result.output
    assert run(site_dir, "node", "list").output.strip() == "(none)"
