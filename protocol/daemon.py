"""Small helpers shared by the long-running commands of edge and hub."""

import logging
import signal
import threading


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("paho").setLevel(logging.WARNING)


def stop_on_signals(on_stop) -> threading.Event:
    """Call ``on_stop`` (and set the returned event) on SIGTERM or SIGINT."""
    stopped = threading.Event()

    def handler(signum, frame):
        stopped.set()
        on_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stopped
