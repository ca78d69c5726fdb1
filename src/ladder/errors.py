"""Errors meant for people: each says what was wrong, where, and what to do."""

from __future__ import annotations


class LadderError(Exception):
    """Base class for every error the platform reports to a user.

    `code` is a stable machine-readable word (used by the HTTP layer as OpenAI's
    `error.code`), `param` names the offending field when there is one.
    """

    status = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


class InvalidInput(LadderError):
    """The request or file is malformed; nothing was changed."""


class NotFound(LadderError):
    status = 404
    error_type = "not_found_error"


class Conflict(LadderError):
    status = 409
    error_type = "conflict_error"


class ContextLengthExceeded(InvalidInput):
    def __init__(self, message: str, param: str | None = "messages"):
        super().__init__(message, code="context_length_exceeded", param=param)


class BackendError(LadderError):
    """A model backend failed (remote endpoint down, 4xx/5xx, load failure)."""

    status = 502
    error_type = "api_error"


class StoreUnavailable(LadderError):
    """The database named by LADDER_DATABASE_URL is malformed or cannot be reached."""

    status = 503
    error_type = "api_error"


class TooLarge(InvalidInput):
    """An input over a size bound (bytes, lines, chunks); refused before any work on it."""

    status = 413


class QuotaExceeded(LadderError):
    """A per-project budget is spent for now; the message says which and when it frees up."""

    status = 429
    error_type = "rate_limit_error"


class Stopped(Exception):
    """Work was asked to stop between items (its task was cancelled, or its worker is shutting down).

    Not a LadderError: nothing was wrong with the input; whoever asked for the stop decides what it means.
    """
