"""Reading the JSON config files that provisioning writes for a node or hub."""

import json
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """The config file is missing, unreadable or lacks a required key."""


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged
    tls_ca: str | None = None  # CA file; TLS is used when set

    @classmethod
    def from_dict(cls, d: dict) -> "MqttSettings":
        return cls(
            host=d.get("host", cls.host), port=int(d.get("port", cls.port)),
            username=d.get("username"), password=d.get("password"), tls_ca=d.get("tls_ca"),
        )


def load_json(path: str | Path, required: tuple[str, ...]) -> dict:
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    missing = [k for k in required if k not in config]
    if missing:
        raise ConfigError(f"config {path} lacks: {', '.join(missing)}")
    return config
