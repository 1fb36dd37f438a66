"""The hub's JSON config, read the same way by every hub process.

``db`` and ``photos_dir`` are relative to the config file, never to the
working directory, so ``rounds-hub web``, ``ingest`` and the CLI tools all
open the same files whatever directory they were started from."""

from pathlib import Path

from runtime.settings import load_json

_PATHS = ("db", "photos_dir")


def load_hub_config(path, required=("site", "db")) -> dict:
    """The config at ``path`` with its paths resolved; ConfigError when the
    file is unreadable or lacks a ``required`` key."""
    config = load_json(path, required)
    for key in _PATHS:
        if isinstance(config.get(key), str):
            config[key] = str(Path(path).parent / config[key])
    return config
