"""Primary keys handed out before the rows are written, so a batch is written in one flush.

Recording a camera links rows by id (observation -> device, finding -> observation, device -> its last
observation). Flushing after each row to learn its id costs several round trips per camera; on PostgreSQL
the ids are instead drawn from the tables' own sequences, many at once, and the whole batch is written by
one flush (the unit of work groups the inserts per table). Elsewhere (SQLite: a local file, no round trips)
:func:`allocator_for` returns None and the recorder flushes as before.

:func:`write_rows` and :func:`update_rows` write a batch's plain rows. PostgreSQL runs each row of an
executemany as a statement of its own (about 0.1 ms each, and as much again of the driver's Python), so
there they are one statement per table: COPY for new rows, and an ``UPDATE ... FROM json_to_recordset(rows)``
joined on the id (a short statement the driver prepares once; the planner joins it through the primary key).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Sequence

from sqlalchemy import JSON, Connection, Table, bindparam, insert, text, update
from sqlalchemy.orm import Session

__all__ = ["IdAllocator", "JSONText", "allocator_for", "update_rows", "write_rows"]


class JSONText(str):
    """A JSON column's value already serialised: :func:`write_rows` writes it as it is (PostgreSQL only)."""


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


def write_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys; Python-side column defaults apply): COPY on PostgreSQL."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    given = tuple(rows[0])
    defaults = tuple(c.name for c in table.c if c.name not in given and c.default is not None
                     and (c.default.is_scalar or c.default.is_callable))
    columns = given + defaults
    processors = _processors(connection.dialect, table, columns)
    extra = [_default(table.c[c]) for c in defaults]
    names = ", ".join(connection.dialect.identifier_preparer.quote(c) for c in columns)
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(
            f"COPY {connection.dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN") as copy:
        for row in rows:
            values = [row[c] for c in given] + extra
            copy.write_row([v if p is None or v is None or isinstance(v, JSONText) else p(v)
                            for p, v in zip(processors, values)])


def _default(column: Any) -> Any:
    default = column.default
    return default.arg if default.is_scalar else default.arg(None)


def update_rows(connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``columns`` on rows by id: each of ``rows`` is ``(id, *values)``; one statement on PostgreSQL."""
    _scalars_only(table, tuple(columns))
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        statement = update(table).where(table.c.id == bindparam("k_id")).values(
            **{c: bindparam(f"k_{c}") for c in columns})
        connection.execute(statement, [{"k_id": row[0], **{f"k_{c}": v for c, v in zip(columns, row[1:])}}
                                       for row in rows])
        return
    processors = _processors(connection.dialect, table, tuple(columns))
    records = []
    for row in rows:
        record = {"id": row[0]}
        for name, proc, value in zip(columns, processors, row[1:]):
            record[name] = value if proc is None or value is None else proc(value)
        records.append(record)
    # One JSON text rather than an array per column: the driver dumps a list element by element in Python,
    # json.dumps in C (a third less time a statement of 64 rows, measured).
    connection.exec_driver_sql(_update_sql(connection.dialect, table, tuple(columns)),
                               (json.dumps(records, default=_json_scalar),))


@lru_cache(maxsize=64)
def _scalars_only(table: Table, columns: tuple[str, ...]) -> None:
    """Refuse JSON columns: :func:`update_rows` sends scalars (and one JSON text of them on PostgreSQL)."""
    for c in columns:
        if isinstance(table.c[c].type, JSON):
            raise TypeError(f"update_rows sets scalar columns; {table.name}.{c} is JSON")


def _json_scalar(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"update_rows cannot send {type(value).__name__}")


@lru_cache(maxsize=64)
def _processors(dialect: Any, table: Table, columns: tuple[str, ...]) -> list[Any]:
    """The columns' bind processors (e.g. UTC normalisation of datetimes), as the Core would apply them."""
    return [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]


@lru_cache(maxsize=64)
def _update_sql(dialect: Any, table: Table, columns: tuple[str, ...]) -> str:
    """``UPDATE table SET c = v.c ... FROM json_to_recordset(%s::json) AS v (id type, c type...) WHERE id = v.id``."""
    preparer = dialect.identifier_preparer
    names = [preparer.quote(c) for c in columns]
    types = ", ".join(f"{preparer.quote(c)} {table.c[c].type.compile(dialect=dialect)}" for c in ("id", *columns))
    sets = ", ".join(f"{n} = v.{n}" for n in names)
    name = preparer.format_table(table)
    return f"UPDATE {name} SET {sets} FROM json_to_recordset(%s::json) AS v ({types}) WHERE {name}.id = v.id"
