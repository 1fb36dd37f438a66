"""Small helpers shared by the benchmarks: the result file, the machine string,
valid records, and a real Mosquitto on a free port."""

import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from protocol.clock import iso  # noqa: E402
from protocol.ids import record_id  # noqa: E402
from provisioning.broker import Mosquitto, render_broker  # noqa: E402
from runtime.settings import MqttSettings  # noqa: E402
from tests.support import free_port, wait_for  # noqa: E402,F401 - wait_for re-exported

RESULTS = Path(__file__).resolve().parent / "results"
SITE = "bench"
NODE = "n1"
PASSWORDS = {"hub": "hub-secret", NODE: "n1-secret"}


# --- results ---

def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def write_result(name, unit, value, higher_is_better, peer, limit) -> dict:
    """Write bench/results/<name>.json; ``peer`` and ``limit`` are (name, value)."""
    result = {
        "name": name, "unit": unit, "value": round(value, 3),
        "higher_is_better": higher_is_better,
        "peer": {"name": peer[0], "value": round(peer[1], 3)},
        "limit": {"name": limit[0], "value": round(limit[1], 3)},
        "machine": machine(),
        "ts": iso(datetime.now(timezone.utc)),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


# --- records valid per protocol/records.py ---

_BASE = datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc)
_BASE_MS = int(_BASE.timestamp() * 1000)
_ZONES = ("hall-a", "ward-3", "ward-5", "icu-1")


def _device(rng) -> str:
    return f"{rng.getrandbits(64):016x}"


def _id(rng, i) -> str:
    """A record id as a node makes it (protocol.ids: UUIDv7), ten records a
    millisecond."""
    return record_id(_BASE_MS + i // 10, rng.getrandbits(74))


def checkin(rng, i) -> dict:
    return {"id": _id(rng, i), "type": "checkin",
            "ts": iso(_BASE + timedelta(milliseconds=37 * i)),
            "staff_id": f"S{rng.randrange(1, 3000):05d}", "event_id": f"ev-{i % 17}",
            "zone": _ZONES[i % len(_ZONES)], "method": ("portal", "presence")[i % 2],
            "device": _device(rng)}


def presence(rng, i) -> dict:
    first = _BASE + timedelta(seconds=i)
    return {"id": _id(rng, i), "type": "presence",
            "ts": iso(first + timedelta(minutes=5)), "device": _device(rng),
            "staff_id": f"S{rng.randrange(1, 3000):05d}" if i % 3 else None,
            "zone": _ZONES[i % len(_ZONES)], "first_seen": iso(first),
            "last_seen": iso(first + timedelta(minutes=5)), "closed": bool(i % 2),
            "clock_synced": True}


def occupancy(rng, i) -> dict:
    minute = _BASE + timedelta(minutes=i)
    return {"id": _id(rng, i), "type": "occupancy",
            "ts": iso(minute), "zone": _ZONES[i % len(_ZONES)], "minute": iso(minute),
            "devices": rng.randrange(0, 400)}


def mixed_records(n: int, seed: int = 1) -> list[dict]:
    """``n`` records: 60 % checkin, 30 % presence, 10 % occupancy, interleaved."""
    rng = random.Random(seed)
    makers = (checkin,) * 6 + (presence,) * 3 + (occupancy,)
    return [makers[i % 10](rng, i) for i in range(n)]


def checkin_records(n: int, seed: int = 2) -> list[dict]:
    rng = random.Random(seed)
    return [checkin(rng, i) for i in range(n)]


# --- a real Mosquitto ---

class Broker(Mosquitto):
    """Mosquitto with the generated Rounds config, ACL and passwords; a context
    manager, so the process is stopped even when the benchmark fails."""

    def __init__(self, directory: Path, users: dict[str, str] = PASSWORDS,
                 username_as_clientid: bool = False):
        port = free_port()
        self.users = users
        super().__init__(render_broker(directory, site=SITE, port=port, users=users,
                                       username_as_clientid=username_as_clientid,
                                       log_dest=f"file {directory / 'mosquitto.log'}"), port)

    def settings(self, user: str) -> MqttSettings:
        return MqttSettings(host="127.0.0.1", port=self.port, username=user,
                            password=self.users[user])
