"""The group hub's ingest: every campus's uplinks, as the group broker has them
from the campus bridges, each stored in its campus's schema (``campuses``) by
the campus hub's own code (``hub.ingest``): the same checks, quarantine and
exactly-once rules, a message acknowledged to the group broker only once it is
committed. Nothing is sent down: a campus's nodes have their acks, roster and
schedules from their campus hub, which keeps working while the group link is
down (the bridge queues the uplinks and delivers them when it is back).

Uplinks of a site that is not one of the group's campuses are quarantined in
the group database's own (public) schema."""

from hub.db import open_db
from hub.ingest import store
from hub.ingest.subscriber import Ingest
from protocol import topics

from .campuses import ensure

CLIENT_ID = "group-hub"  # the group broker takes user names as client ids


class GroupIngest(Ingest):
    def __init__(self, *, group_dsn: str, campuses, mqtt, photos_dir,
                 client_id: str = CLIENT_ID):
        super().__init__(site="+", db_path=group_dsn, mqtt=mqtt, photos_dir=photos_dir,
                         client_id=client_id, subscription=topics.all_nodes_up("+"),
                         downlink=False)
        self.campuses = tuple(campuses)
        self._campus_dbs: dict = {}
        self._group_db = None

    def run(self) -> None:
        """``Ingest.run`` with a connection to each campus's schema (made and
        migrated first if new)."""
        self._campus_dbs = {site: open_db(ensure(self.db_path, site), migrate=False)
                            for site in self.campuses}
        try:
            super().run()
        finally:
            for db in self._campus_dbs.values():
                db.close()

    def handle(self, topic: str, payload: bytes, properties=None) -> None:
        if self._group_db is None:  # the first message: self.db is still Ingest.run's
            self._group_db = self.db  # connection, to the group database's own schema
        parts = topic.split("/")
        site = parts[2] if len(parts) > 2 else None
        campus = self._campus_dbs.get(site)
        if campus is None:
            store.quarantine(self._group_db, topic=topic, node=None, payload=payload,
                             reason="not a campus of this group")
            return
        # The message is the campus's from here on, an error's quarantine too.
        self.db, self.site = campus, site
        super().handle(topic, payload, properties)

    def _ack(self, node: str, ack: dict) -> None:
        """Nothing: the node has its acks from its campus hub."""
