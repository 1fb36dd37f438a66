"""The one-machine demo: Mosquitto, the hub, a simulated lecture-hall node and
scripted phones (``run``), on a hub seeded with three months of a hospital's
use (``seed``). Run it with ``make demo`` (``python -m demo``)."""
