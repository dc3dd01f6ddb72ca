"""Statements of a cycle whose SQL is built once per process, then run again with new values.

Why: after the lean cycle (issue 14) a scheduled cycle's largest cost after its round trips was
the ORM building the same statements again on every cycle: about 1 ms of Python for each locking
read of the agent (the claim's has four subqueries) and about as much for each UPDATE, more than
PostgreSQL takes to run them. Their text never changes between cycles, only their values do.

- `CompiledRead` has the ORM compile a queryset once, with marker values in place of the id and
  the time, and later runs the stored SQL with the real values where the markers were, then
  builds the instance as the ORM's own iterable does: the same converters (SQLite's datetimes,
  JSON fields) and the annotations set as attributes. Kept to what that needs: one model, no
  select_related; a marker that does not appear exactly once is refused on first use.
- `update_row` writes `UPDATE … SET column = value, counter = counter + 1 … WHERE …` with the text
  built once per model, column set and database, and the values prepared by their fields (as
  `QuerySet.update` prepares them), for the cycle's plain one-row updates.

Both are tested against the ORM's own results on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connections

_UPDATES = {}  # (model, database alias, columns set, columns added to, where) -> SQL

# Values no real call passes: found in the compiled parameters and replaced on every run.
ID_MARKER = -734_002_117
TIME_MARKER = datetime(1970, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)


class CompiledRead:
    """`build(pk, now)` returns the queryset; `fetch(pk, now)` returns its one instance or None."""

    def __init__(self, build, *, uses_time=False):
        self._build = build
        self._uses_time = uses_time
        self._compiled = {}  # database alias -> _Compiled

    def fetch(self, pk, now=None, using="default"):
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compiled[using] = self._compile(using)
        return compiled.fetch(pk, now)

    def _compile(self, using):
        queryset = self._build(ID_MARKER, TIME_MARKER if self._uses_time else None)
        return _Compiled(queryset.query.get_compiler(using=using), self._uses_time)


class _Compiled:
    def __init__(self, compiler, uses_time):
        connection = compiler.connection
        self.sql, params = compiler.as_sql()  # also sets compiler.select, klass_info, ...
        self.params = list(params)
        self.id_at = _only_position(self.params, ID_MARKER, "id")
        self.time_at = None
        if uses_time:
            marker = connection.ops.adapt_datetimefield_value(TIME_MARKER)
            self.time_at = _only_position(self.params, marker, "time")
        self.compiler = compiler
        self.alias = compiler.using
        klass_info = compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.model_columns = slice(fields[0], fields[-1] + 1)
        self.attnames = [column[0].target.attname for column in compiler.select[self.model_columns]]
        self.annotations = list(compiler.annotation_col_map.items())
        self.converters = compiler.get_converters(
            [column[0] for column in compiler.select[: compiler.col_count]]
        )

    def fetch(self, pk, now):
        connection = connections[self.alias]
        params = list(self.params)
        params[self.id_at] = pk
        if self.time_at is not None:
            params[self.time_at] = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:  # the ORM's own converters, as a queryset applies them
            rows = self.compiler.apply_converters(rows, self.converters)
        for row in rows:
            instance = self.model.from_db(self.alias, self.attnames, row[self.model_columns])
            for name, position in self.annotations:
                setattr(instance, name, row[position])
            return instance
        return None


def _only_position(params, marker, what):
    positions = [index for index, value in enumerate(params) if value == marker]
    if len(positions) != 1:
        raise ValueError(f"the {what} marker appears {len(positions)} times in the compiled query")
    return positions[0]


def update_row(model, *, where, values=None, add_one=(), using="default") -> int:
    """UPDATE one model's rows matching `where` (column = value, values not None): set `values`,
    add one to each `add_one` column. Returns the number of rows updated."""
    values = values or {}
    connection = connections[using]
    meta = model._meta
    key = (model, using, tuple(values), tuple(add_one), tuple(where))
    sql = _UPDATES.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        column = {name: quote(meta.get_field(name).column) for name in (*values, *add_one, *where)}
        assignments = [f"{column[name]} = %s" for name in values]
        assignments += [f"{column[name]} = {column[name]} + 1" for name in add_one]
        conditions = [f"{column[name]} = %s" for name in where]
        sql = _UPDATES[key] = (
            f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "
            f"WHERE {' AND '.join(conditions)}"
        )
    params = [
        meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()
    ]
    params += [
        meta.get_field(name).get_db_prep_value(value, connection) for name, value in where.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
