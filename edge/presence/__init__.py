"""Presence on the dedicated Wi-Fi: who is in the room, without a tap.

A ProbeQuest-style pipeline, capture -> parse -> filter -> sink:

- ``capture``: an AF_PACKET socket with a kernel BPF filter, so only DHCP and
  ARP frames reach Python (``Capture``);
- ``parse``: ``parse(frame, ts) -> Sighting | None``, pure, struct-based,
  never raises;
- ``hostapd``: hostapd's control interface (station events and the station
  list) on ward nodes; ``hostapd_peer`` is a stand-in for tests and demos;
- ``tracker``: sightings -> presence intervals, presence check-ins and
  per-minute occupancy counts (the privacy rules live there);
- ``service``: the threads, the queue and the watchdog of ``rounds-edge
  presence``.

Only ``parse`` reads frames, and it does so with ``struct``; ``capture`` uses
scapy only to have libpcap compile the filter expression.
"""
