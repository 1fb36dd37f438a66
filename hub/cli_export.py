"""`rounds-hub` commands: export (being built)."""

import click

COMMANDS: list[click.Command] = []
