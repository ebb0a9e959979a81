"""Database errors as Python exceptions an application can catch by meaning.

Each keeps the server's message, SQLSTATE, detail and hint, and chains the psycopg error
(`__cause__`). Mapping is by SQLSTATE, the constraint the server names, and which call
failed (a data error in track() is an invalid event, in rerank() an invalid argument).
"""

from __future__ import annotations

import os

import psycopg
import psycopg_pool


class RecdbError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message  # the server's primary message, as it sent it
        self.sqlstate = sqlstate  # None for errors raised before reaching the server
        self.detail = detail
        self.hint = hint

    def __str__(self) -> str:
        """The message, and the detail as psql shows it (for a foreign key: which key)."""
        return self.message if self.detail is None else f"{self.message}\nDETAIL:  {self.detail}"


class InvalidArgument(RecdbError):
    """The server refused an argument: NULL user, k outside 1..10000, a filter that is not
    a JSON object, NULLs in candidates (the message names the argument)."""


class InvalidEvent(InvalidArgument):
    """An event the server refuses: a value outside its kind's range, a time in the future
    or at infinity, a NULL where a value is needed."""


class UnknownKind(InvalidEvent):
    """The event's kind is not a row of recdb.event_kinds."""


class InvalidItem(InvalidArgument):
    """An item the server refuses: no title, attrs that are not a JSON object."""


class UnknownItem(InvalidArgument):
    """No such item: an event naming it, or similar_items() asked about it."""


class PermissionDenied(RecdbError):
    """The connected role may not do this (recdb_app writes only the columns an app owns)."""


class Unavailable(RecdbError):
    """No connection: the server is down, unreachable or refused the login (libpq's
    reason in the message), or no pooled connection came free within the timeout."""


class ClientClosed(RecdbError):
    """The client was closed (or used in a process forked after it was created)."""


# Foreign keys of recdb.events (sql/v0001/schema.sql), by the name the server reports.
_FOREIGN_KEYS: dict[str, type[RecdbError]] = {
    "events_kind_fkey": UnknownKind,
    "events_item_id_fkey": UnknownItem,
}


def _kind(exc: psycopg.Error, invalid: type[InvalidArgument]) -> type[RecdbError]:
    state = exc.sqlstate or ""
    if isinstance(exc, psycopg_pool.PoolClosed):
        return ClientClosed
    if state == "23503":  # foreign_key_violation
        return _FOREIGN_KEYS.get(exc.diag.constraint_name or "", invalid)
    if state == "P0002":  # no_data_found: similar_items() of an unknown id
        return UnknownItem
    if state.startswith(("22", "23")):  # data exception, integrity constraint violation
        return invalid
    if state == "42501":
        return PermissionDenied
    if state.startswith(("08", "57P")) or (not state and isinstance(exc, psycopg.OperationalError)):
        return Unavailable
    return RecdbError


def translate(exc: psycopg.Error, invalid: type[InvalidArgument] = InvalidArgument) -> RecdbError:
    """The client exception for a psycopg error raised by a call whose bad input is
    `invalid` (InvalidEvent for track, InvalidItem for upsert_items, else InvalidArgument)."""
    diag = exc.diag
    return _kind(exc, invalid)(
        diag.message_primary or str(exc),
        sqlstate=exc.sqlstate,
        detail=diag.message_detail,
        hint=diag.message_hint,
    )


def check_process(created_in: int) -> None:
    """psycopg connections cannot cross fork(): the child would share the parent's sockets.
    Refuse instead of corrupting both sessions; create the client after the fork."""
    if os.getpid() != created_in:
        raise ClientClosed(
            f"this client was created in process {created_in} and cannot be used after "
            "fork(): create the client in each process (e.g. in the app's startup hook)"
        )
