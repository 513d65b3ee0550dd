"""SQL that steers SQLite's query planner where it keeps no statistics.

xinyong never runs ANALYZE on SQLite, so the planner guesses from the shape of a query alone, and
guesses that an equality on any indexed column is selective, and that an index read in order
beats a sort. Where the index holds nearly every row (the link state: nearly every link is linked
or new; the authority of a batch: one authority sends millions of records), or where reading it in
order fetches the table a row at a time in random order (the records by key, for a dump), it costs
more than any other plan.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction


class not_by_index(GenericFunction):
    """A column that SQLite's planner must not look rows up by, nor read in its index's order.
    SQLite's unary `+` leaves the value as it is and the index unused; other engines plan from
    their statistics and get the column."""
    inherit_cache = True


@compiles(not_by_index)
def _plain(element: not_by_index, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(not_by_index, "sqlite")
def _unary_plus(element: not_by_index, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def plan_for_the_whole_register(connection: Connection) -> None:
    """For the rest of the transaction, PostgreSQL joins by hashing or merging, never by nested
    loops: a query over the whole register reads most of its tables, where those are the plans.
    Its planner guesses the selectivity of a test on a record's JSON fields (a pack's rule
    conditions, 0.5% each): two such guesses (grade A, last year) made it nest a loop over every
    link and the records it thought were one (the tax A-grade list at 1M records: stopped after
    30 minutes; 5 s hashed). SQLite plans by its own rules (`not_by_index`)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL enable_nestloop = off"))
