"""`rounds-hub` commands: roster (being built)."""

import click

COMMANDS: list[click.Command] = []
