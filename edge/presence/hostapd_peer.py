"""A stand-in for hostapd's control interface, for the tests and the demo
(which have no radio).

A unix datagram server at ``path`` that answers like hostapd 2.x:
``PING`` -> ``PONG``, ``ATTACH`` / ``DETACH`` -> ``OK`` (or ``FAIL`` for a
client that is not attached), ``STA-FIRST`` / ``STA-NEXT <mac>`` ->
``<mac>\\nflags=[AUTH][ASSOC][AUTHORIZED]\\naid=N\\n...\\ninactive_msec=N\\n...``
and an empty reply after the last station (``FAIL`` for an unknown MAC),
``STA <mac>`` the same for one station, anything else ``UNKNOWN COMMAND``.
``connect(mac)`` / ``disconnect(mac)`` change the station list and push
``<3>AP-STA-CONNECTED <mac>`` / ``<3>AP-STA-DISCONNECTED <mac>`` to every
attached client, as hostapd does after the 4-way handshake and on a
deauthentication. ``set_inactive`` sets a station's ``inactive_msec``.

Runs in a thread (``start``/``stop`` or a ``with`` block)::

    with HostapdPeer("/tmp/hostapd/wlan0") as ap:
        ap.connect("02:00:00:00:00:01")
"""

import os
import socket
import threading
import time
from pathlib import Path

from edge.devices import normalise_mac


class HostapdPeer:
    def __init__(self, path):
        self.path = Path(path)
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.stations: dict[str, dict] = {}  # mac -> {"aid", "connected_at", "inactive_msec"}
        self.attached: set = set()  # client addresses
        self.commands: list[str] = []  # every command received, for the tests
        self._next_aid = 1
        self._stop = threading.Event()

    # --- the AP's side ------------------------------------------------------------

    def connect(self, mac: str, inactive_msec: int = 0) -> None:
        mac = normalise_mac(mac)
        with self.lock:
            self.stations[mac] = {"aid": self._next_aid, "connected_at": time.monotonic(),
                                  "inactive_msec": inactive_msec}
            self._next_aid += 1
        self.push(f"<3>AP-STA-CONNECTED {mac}")

    def disconnect(self, mac: str) -> None:
        mac = normalise_mac(mac)
        with self.lock:
            self.stations.pop(mac, None)
        self.push(f"<3>AP-STA-DISCONNECTED {mac}")

    def set_inactive(self, mac: str, inactive_msec: int) -> None:
        with self.lock:
            self.stations[normalise_mac(mac)]["inactive_msec"] = inactive_msec

    def push(self, event: str) -> None:
        """Send ``event`` to every attached client (a gone client is forgotten)."""
        with self.lock:
            clients = list(self.attached)
        for address in clients:
            try:
                self.sock.sendto(event.encode(), address)
            except OSError:
                with self.lock:
                    self.attached.discard(address)

    # --- the control interface ------------------------------------------------------

    def _station_text(self, mac: str) -> str:
        sta = self.stations[mac]
        connected = int(time.monotonic() - sta["connected_at"])
        return (f"{mac}\nflags=[AUTH][ASSOC][AUTHORIZED][SHORT_PREAMBLE][WMM][HT]\n"
                f"aid={sta['aid']}\ncapability=0x1\nlisten_interval=1\n"
                f"supported_rates=82 84 8b 96 0c 12 18 24 30 48 60 6c\ntimeout_next=NULLFUNC POLL\n"
                f"dot11RSNAStatsSTAAddress={mac}\nrx_packets=42\ntx_packets=17\n"
                f"inactive_msec={sta['inactive_msec']}\nsignal=-48\n"
                f"connected_time={connected}\n")

    def answer(self, command: str, address) -> str:
        words = command.strip().split()
        name = words[0] if words else ""
        with self.lock:
            macs = list(self.stations)
            if name == "PING":
                return "PONG\n"
            if name == "ATTACH":
                self.attached.add(address)
                return "OK\n"
            if name == "DETACH":
                if address in self.attached:
                    self.attached.discard(address)
                    return "OK\n"
                return "FAIL\n"
            if name == "STA-FIRST":
                return self._station_text(macs[0]) if macs else ""
            if name in ("STA-NEXT", "STA") and len(words) == 2:
                mac = normalise_mac(words[1])
                if mac not in self.stations:
                    return "FAIL\n"
                if name == "STA":
                    return self._station_text(mac)
                following = macs[macs.index(mac) + 1:]
                return self._station_text(following[0]) if following else ""
        return "UNKNOWN COMMAND\n"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            command = data.decode("utf-8", "replace")
            self.commands.append(command.strip())
            reply = self.answer(command, address)
            try:
                self.sock.sendto(reply.encode(), address)
            except OSError:
                pass

    def start(self) -> "HostapdPeer":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o660)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, name="hostapd-peer", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(5)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        try:
            self.path.unlink()
        except OSError:
            pass

    def __enter__(self) -> "HostapdPeer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    """Run a peer at the given path until interrupted.

    With ``--stdin`` it reads commands, one a line, until end of input:
    ``connect <mac>``, ``disconnect <mac>``, ``inactive <mac> <msec>`` (the
    demo drives its simulated access point this way).

    Example: python -m edge.presence.hostapd_peer /tmp/hostapd/wlan0 02:00:00:00:00:01
    """
    import sys
    args = sys.argv[1:] if argv is None else list(argv)
    from_stdin = "--stdin" in args
    args = [a for a in args if a != "--stdin"]
    if not args:
        print("usage: python -m edge.presence.hostapd_peer [--stdin] <socket path> "
              "[station mac ...]")
        return 2
    with HostapdPeer(args[0]) as peer:
        for mac in args[1:]:
            peer.connect(mac)
        try:
            if from_stdin:
                for line in sys.stdin:
                    _command(peer, line.split())
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def _command(peer: HostapdPeer, words: list[str]) -> None:
    try:
        if words[:1] == ["connect"] and len(words) == 2:
            peer.connect(words[1])
        elif words[:1] == ["disconnect"] and len(words) == 2:
            peer.disconnect(words[1])
        elif words[:1] == ["inactive"] and len(words) == 3:
            peer.set_inactive(words[1], int(words[2]))
        elif words:
            print(f"unknown command: {' '.join(words)}", flush=True)
    except (KeyError, TypeError, ValueError) as exc:
        print(f"bad command {' '.join(words)}: {exc!r}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
