"""Primary keys handed out before the rows are written, so a batch is written in one flush.

Recording a camera links rows by id (observation -> device, finding -> observation, device -> its last
observation). Flushing after each row to learn its id costs several round trips per camera; on PostgreSQL
the ids are instead drawn from the tables' own sequences, many at once, and the whole batch is written by
one flush (the unit of work groups the inserts per table). Elsewhere (SQLite: a local file, no round trips)
:func:`allocator_for` returns None and the recorder flushes as before.
"""

from __future__ import annotations

from sqlalchemy import Table, text
from sqlalchemy.orm import Session

__all__ = ["IdAllocator", "allocator_for"]


class IdAllocator:
    """Ids from each table's sequence, fetched ``block`` at a time (unused ones are simply skipped)."""

    def __init__(self, session: Session, block: int = 128) -> None:
        self.session = session
        self.block = block
        self._free: dict[str, list[int]] = {}
        self._sequence: dict[str, str] = {}

    def next(self, table: Table) -> int:
        """A fresh id for a row of ``table``."""
        free = self._free.setdefault(table.name, [])
        if not free:
            sequence = self._sequence.get(table.name)
            if sequence is None:
                sequence = self._sequence[table.name] = self.session.scalar(
                    text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name})
            free.extend(reversed(list(self.session.scalars(
                text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                {"s": sequence, "n": self.block}))))
        return free.pop()


def allocator_for(session: Session) -> IdAllocator | None:
    """An allocator when the session's database has sequences (PostgreSQL), else None."""
    return IdAllocator(session) if session.get_bind().dialect.name == "postgresql" else None
