"""The gate: the node's one small privileged path (``rounds-edge gate``).

The portal runs unprivileged and only writes the ``released`` table of the
node database (``Devices.release``). The gate, holding CAP_NET_ADMIN and
nothing else, makes the kernel agree with that table: every ``interval``
seconds it compares ``Devices.released()`` ({mac: remaining seconds}) with
the elements of the nftables set ``inet rounds released`` and

- adds the MACs that are missing, with their remaining time as the element's
  timeout (so the kernel lets a phone go by itself even if the gate stops);
- replaces an element whose kernel timeout disagrees with the database by
  more than ``TOLERANCE`` seconds (a release was extended), in one atomic
  nft transaction (delete + add);
- deletes the MACs the database no longer releases.

On start the whole table is loaded the same way. nft is always run with an
argv list (never a shell), and every MAC, from the database or the kernel, is
checked with ``normalise_mac`` before it is put on a command line. When the
ruleset is reloaded (the set comes back empty) the next pass refills it.
"""

import json
import logging
import shutil
import subprocess
import threading
from pathlib import Path

from .db import open_db
from .devices import Devices, normalise_mac

log = logging.getLogger("rounds.gate")

FAMILY, TABLE, SET = "inet", "rounds", "released"
TOLERANCE = 5  # seconds of disagreement between kernel and database timeouts
CAP_NET_ADMIN = 12
NFT_TIMEOUT = 10


class GateError(RuntimeError):
    """The gate cannot work on this node (said once, clearly, at start)."""


def find_nft(nft: str | None = None) -> str:
    """The nft binary: ``nft`` if given, else on PATH, else /usr/sbin/nft."""
    candidates = [nft] if nft else [shutil.which("nft"), "/usr/sbin/nft", "/sbin/nft"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise GateError(f"nft not found{f' at {nft}' if nft else ''}: install the nftables "
                    "package (Debian: apt-get install nftables)")


def has_cap_net_admin(status_file: str = "/proc/self/status") -> bool:
    for line in Path(status_file).read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


class Gate:
    def __init__(self, db_path, nft: str | None = None):
        self.db_path = db_path
        self.nft = find_nft(nft)
        self.db = None
        self._ignored: set[str] = set()

    # --- nft -------------------------------------------------------------------

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.nft, *args], capture_output=True, text=True,
                              timeout=NFT_TIMEOUT, check=False)

    def check(self) -> None:
        """Fail fast with a clear message unless the gate can do its work."""
        if not has_cap_net_admin():
            raise GateError("the gate needs CAP_NET_ADMIN to change the nftables set: run it "
                            "as root or through rounds-gate.service "
                            "(AmbientCapabilities=CAP_NET_ADMIN)")
        result = self._run("-j", "list", "set", FAMILY, TABLE, SET)
        if result.returncode != 0:
            reason = result.stderr.strip().splitlines()
            raise GateError(
                f"nftables set {FAMILY} {TABLE} {SET} is not there "
                f"({reason[0] if reason else 'nft failed'}): load the node's ruleset first "
                "(nft -f /etc/rounds/nftables.conf, or start rounds-firewall.service)")
        info = self._set_info(result.stdout)
        if info.get("type") != "ether_addr" or "timeout" not in info.get("flags", []):
            raise GateError(f"nftables set {FAMILY} {TABLE} {SET} must be of type ether_addr "
                            "with flags timeout: reload the node's ruleset")

    @staticmethod
    def _set_info(output: str) -> dict:
        for item in json.loads(output).get("nftables", []):
            if "set" in item:
                return item["set"]
        return {}

    def kernel(self) -> dict[str, int | None]:
        """The set's elements now: {mac: seconds until it expires (None: never)}."""
        result = self._run("-j", "list", "set", FAMILY, TABLE, SET)
        if result.returncode != 0:
            raise GateError(f"cannot list {FAMILY} {TABLE} {SET}: {result.stderr.strip()}")
        elements = {}
        for entry in self._set_info(result.stdout).get("elem", []):
            elem = entry.get("elem", {}) if isinstance(entry, dict) else {}
            value = elem.get("val") if elem else entry
            mac = normalise_mac(value) if isinstance(value, str) else None
            if mac:
                elements[mac] = elem.get("expires", elem.get("timeout")) if elem else None
        return elements

    # --- the database -------------------------------------------------------------

    def wanted(self) -> dict[str, int]:
        """The released MACs of the node database, checked: {mac: remaining seconds}."""
        if self.db is None:
            self.db = open_db(self.db_path)
        wanted = {}
        for text, remaining in Devices(self.db, b"").released().items():
            mac = normalise_mac(text) if isinstance(text, str) else None
            if mac is None:
                if text not in self._ignored:  # say it once, not every pass
                    self._ignored.add(text)
                    log.warning("ignoring a released entry that is not a MAC address")
                continue
            wanted[mac] = max(int(remaining), 1)
        return wanted

    # --- reconciling ----------------------------------------------------------------

    def reconcile(self) -> tuple[int, int, int]:
        """One pass: make the kernel set equal the database. Returns (added,
        replaced, removed)."""
        wanted, present = self.wanted(), self.kernel()
        add = {mac: secs for mac, secs in wanted.items() if mac not in present}
        replace = {mac: secs for mac, secs in wanted.items() if mac in present
                   and (present[mac] is None or abs(present[mac] - secs) > TOLERANCE)}
        remove = [mac for mac in present if mac not in wanted]

        commands = []
        if remove or replace:
            commands += [["delete", "element", FAMILY, TABLE, SET,
                          "{ " + ", ".join([*remove, *replace]) + " }"]]
        if add or replace:
            commands += [["add", "element", FAMILY, TABLE, SET,
                          "{ " + ", ".join(f"{mac} timeout {secs}s" for mac, secs in
                                           {**add, **replace}.items()) + " }"]]
        if commands:
            # One nft invocation is one transaction: all of it applies, or none.
            argv = [arg for i, command in enumerate(commands)
                    for arg in ([";"] if i else []) + command]
            result = self._run(*argv)
            if result.returncode != 0:
                # Most likely an element expired in the kernel between the
                # listing and the delete; the next pass starts from fresh facts.
                raise GateError(f"nft refused the update: {result.stderr.strip()}")
        if add or replace or remove:
            log.info("released set: %d added, %d renewed, %d removed",
                     len(add), len(replace), len(remove))
        return len(add), len(replace), len(remove)

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Check, load everything, then reconcile every ``interval`` s until ``stop``."""
        self.check()
        self.reconcile()
        log.info("gate running: %s %s %s follows %s", FAMILY, TABLE, SET, self.db_path)
        while not stop.wait(interval):
            try:
                self.reconcile()
            except (GateError, subprocess.TimeoutExpired, OSError) as exc:
                log.error("%s (retrying)", exc)
            except Exception as exc:  # e.g. sqlite3 busy: never die on one pass
                log.error("reconcile failed: %s: %s (retrying)", type(exc).__name__, exc)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
