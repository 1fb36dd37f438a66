"""Errors the hub's domain modules share."""


class NotFound(LookupError):
    """No ticket, ledger entry, ... with that id (the web turns it into a 404)."""
