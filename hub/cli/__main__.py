"""``python -m hub.cli``: the same as ``rounds-hub``."""

from hub.cli.main import main

main()
