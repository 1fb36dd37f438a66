"""MQTT topic names under ``rounds/v1/<site>/`` (DESIGN.md, MQTT contract)."""

ROOT = "rounds/v1"


def node_up(site: str, node: str, kind: str) -> str:
    """``kind`` is ``batch``, ``photo`` or ``status``."""
    return f"{ROOT}/{site}/node/{node}/up/{kind}"


def node_down(site: str, node: str, kind: str) -> str:
    """``kind`` is ``ack`` or ``config``."""
    return f"{ROOT}/{site}/node/{node}/down/{kind}"


def site_down(site: str, kind: str) -> str:
    """Site-wide downlink; ``kind`` is ``roster`` or ``assessment`` (everyone's
    progress against the year's items, for the portal's "my record")."""
    return f"{ROOT}/{site}/down/{kind}"


def all_nodes_up(site: str) -> str:
    """The hub's subscription: every node's uplink."""
    return f"{ROOT}/{site}/node/+/up/#"


# The default group of the ingest workers' shared subscription; a site's hub
# config names its own (hub/ingest/workers.py says why it is kept secret).
INGEST_GROUP = "rounds-ingest"


def shared_nodes_up(site: str, group: str = INGEST_GROUP) -> str:
    """The subscription of ``rounds-hub ingest --workers N`` (N > 1): every
    node's uplink as an MQTT v5 shared subscription, so that the broker hands
    each message to one worker of ``group``; the broker matches messages
    against the filter after the ``$share/<group>/`` prefix."""
    return f"$share/{group}/{all_nodes_up(site)}"


def parse_node_up(site: str, topic: str) -> tuple[str, str] | None:
    """Return ``(node, kind)`` for a node uplink topic of this site, else None."""
    parts = topic.split("/")
    if (
        len(parts) == 7
        and f"{parts[0]}/{parts[1]}" == ROOT
        and parts[2] == site
        and parts[3] == "node"
        and parts[5] == "up"
        and parts[4]
    ):
        return parts[4], parts[6]
    return None
