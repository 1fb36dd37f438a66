"""What the record refuses, with a reason the dashboard can show in the
reader's language: an English template marked with ``N_`` and its
parameters (as ``hub.people.roster.RosterError``)."""


def N_(message: str) -> str:
    """Marks ``message`` for translation; it is translated where it is shown."""
    return message


class RecordError(ValueError):
    """Bad input (400)."""

    def __init__(self, message: str, **params):
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


class NotFound(RecordError):
    """No such entry, or not one the account may see (404)."""


class Forbidden(RecordError):
    """An entry the account sees but may not decide or change now (403)."""


class Conflict(RecordError):
    """The entry is not in the state the request needs (409)."""
