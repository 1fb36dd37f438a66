"""Every command of the three console scripts has help with an example."""

import click
import pytest
from click.testing import CliRunner

from edge.cli import main as edge_main
from hub.cli.main import main as hub_main
from provisioning.cli import main as provision_main


def commands(group, prefix):
    yield prefix, group
    if isinstance(group, click.Group):
        for name, command in group.commands.items():
            yield from commands(command, prefix + [name])


ALL = [(" ".join(path), cmd) for root, name in
       ((edge_main, "rounds-edge"), (hub_main, "rounds-hub"), (provision_main, "rounds-provision"))
       for path, cmd in commands(root, [name])]


@pytest.mark.parametrize("path, command", ALL, ids=[p for p, _ in ALL])
def test_every_command_is_documented_with_an_example(path, command):
    assert command.help and "Example:" in command.help, f"{path} lacks an Example:"
    result = CliRunner().invoke(edge_main if path.startswith("rounds-edge") else
                                hub_main if path.startswith("rounds-hub") else provision_main,
                                path.split()[1:] + ["-h"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_missing_config_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(edge_main, ["--config", str(tmp_path / "nope.json"), "sync"])
    assert result.exit_code == 1
    assert "config file not found" in result.output
