"""Exceptions of the ``eventdbx`` package.

Every failure of a call is an :class:`EventDBXError`. The three classes of the official package
0.1.8 keep their names, bases and fields (:class:`EventDBXAPIError` with ``code`` and
``message``, :class:`EventDBXConnectionError`, :class:`EventDBXHandshakeError`), so existing
``except`` clauses keep working; the others say more precisely what happened:

======================================  ========================================================
class                                   raised when
======================================  ========================================================
:class:`EventDBXAPIError`               the server answered with an error (``code``, ``message``)
:class:`EventDBXInputError`             the input would be refused; nothing was sent (a ``ValueError``)
:class:`EventDBXTypeError`              an argument has the wrong Python type; nothing was sent (an
                                        ``EventDBXInputError`` and a ``TypeError``)
:class:`EventDBXCheckpointError`        a subscription checkpoint is not one this client wrote for
                                        these aggregate types; nothing was sent (an
                                        ``EventDBXInputError``)
:class:`EventDBXStateError`             ``state_as`` was given a type the aggregate's state does not
                                        fit (a ``ValueError``)
:class:`EventDBXConnectionError`        the connection failed or was lost; safe to call again when
                                        ``retryable`` is true
:class:`EventDBXHandshakeError`         the server refused the session (token, tenant) or the
                                        Noise handshake failed
:class:`EventDBXTimeoutError`           the call's deadline (``read_timeout``) passed (a ``TimeoutError``)
:class:`EventDBXOutcomeUnknownError`    a write was sent but its reply never came: it may or may
                                        not be applied. It is never sent again by the client;
                                        read back before retrying.
:class:`EventDBXProtocolError`          the peer broke the protocol (the connection is closed)
:class:`EventDBXReplyTooLargeError`     the server closed the connection instead of answering,
                                        also when the call was sent again alone: its reply would
                                        exceed the server's frame limit (a listed row over
                                        ~7.5 KiB, an aggregate over ~32 KiB for ``get``)
:class:`EventDBXExportIncompleteError`  an export of events is written but leaves out archived
                                        aggregates (their events are not served); the files are in
                                        place (``skip_archived=True`` accepts that)
======================================  ========================================================

Every instance has ``kind`` (the Rust client's error kind, e.g. ``"timeout"``), ``retryable``
(sending the same call again is safe), ``outcome_unknown`` and ``auth`` (the token was refused:
invalid, expired, not granted the tenant, or lacking the permission). Messages never contain the
token.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Type

__all__ = [
    "EventDBXError",
    "EventDBXAPIError",
    "EventDBXInputError",
    "EventDBXTypeError",
    "EventDBXCheckpointError",
    "EventDBXStateError",
    "EventDBXConnectionError",
    "EventDBXHandshakeError",
    "EventDBXTimeoutError",
    "EventDBXOutcomeUnknownError",
    "EventDBXProtocolError",
    "EventDBXReplyTooLargeError",
    "EventDBXExportIncompleteError",
]


class EventDBXError(RuntimeError):
    """Root of every error a call of this package raises."""

    kind: str = "other"
    retryable: bool = False
    outcome_unknown: bool = False
    auth: bool = False

    def __init__(
        self,
        message: str = "",
        *,
        kind: Optional[str] = None,
        retryable: bool = False,
        outcome_unknown: bool = False,
        auth: bool = False,
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.auth = auth

    @property
    def message(self) -> str:
        """The description of the failure."""
        return str(self.args[0]) if self.args else ""


class EventDBXAPIError(EventDBXError):
    """The server refused the request; ``code`` is its error code (e.g. ``aggregate_not_found``)."""

    kind = "server"

    def __init__(self, code: str, message: str) -> None:
        RuntimeError.__init__(self, code, message)
        self.code = code
        self.retryable = False
        self.outcome_unknown = False
        self.auth = code in ("invalid_token", "token_expired", "token_limit_reached", "unauthorized")

    @property
    def message(self) -> str:
        """The server's message."""
        return str(self.args[1])

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"EventDBXAPIError(code={self.code!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventDBXAPIError):
            return NotImplemented
        return (self.code, self.message) == (other.code, other.message)

    __hash__ = RuntimeError.__hash__


class EventDBXInputError(EventDBXError, ValueError):
    """The input would be refused by the server; nothing was sent."""

    kind = "invalid_input"


class EventDBXTypeError(EventDBXInputError, TypeError):
    """An argument has the wrong Python type (e.g. ``aggregate_id=0``); nothing was sent. The
    message names the argument, the type given and the type wanted."""

    kind = "invalid_input"


class EventDBXCheckpointError(EventDBXInputError):
    """A subscription checkpoint this client did not write, or wrote for a subscription to other
    aggregate types; nothing was sent (an ``EventDBXInputError``, so a ``ValueError``)."""

    kind = "invalid_checkpoint"


class EventDBXStateError(EventDBXError, ValueError):
    """An aggregate's state does not fit the type given to ``state_as`` (the message names the
    field, the stored text and the type wanted)."""

    kind = "decode"


class EventDBXConnectionError(EventDBXError):
    """The connection could not be opened or was lost (see ``retryable``)."""

    kind = "disconnected"


class EventDBXHandshakeError(EventDBXConnectionError):
    """The server refused the session (token, tenant, version) or the Noise handshake failed."""

    kind = "handshake"


class EventDBXTimeoutError(EventDBXConnectionError, TimeoutError):
    """The call's deadline (``read_timeout``) passed."""

    kind = "timeout"


class EventDBXOutcomeUnknownError(EventDBXConnectionError):
    """A write was sent and no reply came: the server may or may not have applied it.

    The client never sends such a write again by itself. Read the aggregate back (its version,
    or the event) before deciding to retry.
    """

    kind = "outcome_unknown"


class EventDBXProtocolError(EventDBXConnectionError):
    """The peer sent bytes that break the protocol, or JSON of an unexpected shape."""

    kind = "protocol"


class EventDBXReplyTooLargeError(EventDBXError):
    """The server could not send its reply (it closed the connection instead, twice): on server
    3.19.4 a listed row over ~7.5 KiB of JSON or an aggregate over ~32 KiB for ``get``.
    Retrying cannot help; the message says after which cursor a listing stopped."""

    kind = "reply_too_large"


class EventDBXExportIncompleteError(EventDBXError):
    """An export of events finished, and its files are in place, but it leaves out archived
    aggregates: the server does not serve their events while they are archived. Pass
    ``skip_archived=True`` when that is intended (the call then returns the row count);
    restore them first to export their events too.

    ``rows`` (events written), ``aggregates`` (whose events were written), ``files`` (the
    paths written), ``archived`` (how many were left out) and ``archived_first`` (the first
    few, as ``"type/id"``) say what the files hold.
    """

    kind = "export_incomplete"

    def __init__(
        self,
        message: str,
        *,
        rows: int = 0,
        aggregates: int = 0,
        files: Optional[List[str]] = None,
        archived: int = 0,
        archived_first: Optional[List[str]] = None,
    ) -> None:
        super().__init__(message, kind="export_incomplete")
        self.rows = rows
        self.aggregates = aggregates
        self.files: List[str] = list(files or [])
        self.archived = archived
        self.archived_first: List[str] = list(archived_first or [])


class _OutcomeUnknownTimeout(EventDBXOutcomeUnknownError, EventDBXTimeoutError):
    """A write timed out after it was sent: both a timeout and an unknown outcome."""

    kind = "outcome_unknown"


_BY_KIND: Dict[str, Type[EventDBXError]] = {
    "config": EventDBXInputError,
    "invalid_input": EventDBXInputError,
    "connect": EventDBXConnectionError,
    "handshake": EventDBXHandshakeError,
    "timeout": EventDBXTimeoutError,
    "not_sent": EventDBXConnectionError,
    "disconnected": EventDBXConnectionError,
    "outcome_unknown": EventDBXOutcomeUnknownError,
    "protocol": EventDBXProtocolError,
    "decode": EventDBXProtocolError,
    "closed": EventDBXConnectionError,
    "reply_too_large": EventDBXReplyTooLargeError,
    "invalid_checkpoint": EventDBXCheckpointError,
}


def _from_native(
    kind: str,
    message: str,
    code: Optional[str],
    outcome_unknown: bool,
    retryable: bool,
    timeout: bool,
    auth: bool,
) -> EventDBXError:
    """Builds the exception for an error of the Rust core (called from ``eventdbx._native``)."""
    if kind == "server":
        return EventDBXAPIError(code or "unknown", message)
    message = _in_python_terms(message)
    if timeout and outcome_unknown:
        cls: type[EventDBXError] = _OutcomeUnknownTimeout
    else:
        cls = _BY_KIND.get(kind, EventDBXError)
    return cls(
        message, kind=kind, retryable=retryable, outcome_unknown=outcome_unknown, auth=auth
    )


# Advice the Rust core gives in Rust terms, and what works from Python instead: fragments of
# messages of crates/edbx. tests/test_errors.py triggers those a Python call can reach (the take
# and token ones are caught by this package's own checks first, and kept here as a safety net).
_PYTHON_ADVICE: Tuple[Tuple[str, str], ...] = (
    ("set Config::token or EVENTDBX_TOKEN", "pass token= or set EVENTDBX_TOKEN"),
    (
        "allow it with `allow_unlistable(true)`",
        "pass allow_unlistable=True to write it anyway",
    ),
    (
        "(see List::filter for the grammar)",
        "(see help(eventdbx.EventDBXClient.list_aggregates) for the grammar)",
    ),
    (
        "(use PageStream::limit to stop early)",
        "(to read fewer rows, stop iterating, e.g. itertools.islice(client.iter_aggregates(), n))",
    ),
    (
        "cannot be streamed; request one page with a large take instead",
        "cannot be iterated: the server gives such a sort no cursor and cuts each page at "
        "~7.5 KiB (often ~25 rows), so a large take does not help either. Iterate with "
        "sort='created_at' or sort='updated_at' (one key), or unsorted and sort the rows "
        "yourself: sorted(client.iter_aggregates(...), key=lambda a: a['aggregate_id'])",
    ),
)


def _in_python_terms(message: str) -> str:
    for rust, python in _PYTHON_ADVICE:
        message = message.replace(rust, python)
    return message
