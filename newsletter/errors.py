"""The exceptions a user can cause, turned into exit status 2 (or an HTTP 4xx) at the edge.

Service code raises these with a message that says what was wrong, where, and
what to do; it never prints, exits or builds an HTTP response itself.
"""


class UserError(Exception):
    """Bad usage, input or config: the message is for the person at the keyboard."""


class ConfigError(UserError):
    """A config file, key or value that cannot work."""


class InputError(UserError):
    """A source file, feed, CSV row or template that cannot be read as given."""


class NotFound(UserError):
    """An id or name that names nothing."""


class InvalidState(UserError):
    """An action that the object's current status does not allow."""


class OperationFailed(Exception):
    """A failure that is not the user's mistake (a server down, a send that failed): exit 1."""
