"""Units of work: each handler gathers, decides (in `routing`) and applies in one
transaction. Entry points (edges, CLI, timed jobs) call these and nothing lower."""


class ServiceError(Exception):
    """A request that cannot be carried out; the message is for the user."""
