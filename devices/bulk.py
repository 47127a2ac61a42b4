"""Writing many rows at once: COPY and one-statement updates on PostgreSQL.

Django's bulk_create prepares every value of every row in Python and sends
them as parameters (about 80 us a row here); an update with pk__in sends each
id as a parameter, 2,000 at a time. At 100,000 devices that is most of a rule
change's time (docs/PERFORMANCE.md). On PostgreSQL these helpers stream rows
with COPY, take their ids from the table's sequence first when the caller
needs them, and name the updated rows with one array. Elsewhere (the
embedded SQLite) they fall back to the ORM.
"""

from collections.abc import Iterable, Sequence

from django.db import connection

BATCH = 2000  # rows per statement without COPY: SQLite takes at most 32,766 parameters


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def insert(model, fields: Sequence[str], rows: Iterable[tuple]) -> int:
    """Insert rows (tuples in `fields` order, foreign keys by attname); return the count."""
    count = 0
    if _postgres():
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        columns = ", ".join(quote(model._meta.get_field(f).column) for f in fields)
        # cursor.cursor: psycopg's own cursor, which speaks COPY.
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    batch = []
    for row in rows:
        batch.append(model(**dict(zip(fields, row, strict=True))))
        if len(batch) == BATCH:
            model.objects.bulk_create(batch)
            count, batch = count + len(batch), []
    model.objects.bulk_create(batch)
    return count + len(batch)


def insert_with_ids(model, fields: Sequence[str], rows: Sequence[tuple]) -> list[int]:
    """Insert rows and return their primary keys, in the rows' order."""
    if not rows:
        return []
    if _postgres():
        table = model._meta.db_table
        column = model._meta.pk.column
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, column, len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
        insert(
            model,
            [model._meta.pk.attname, *fields],
            ((i, *r) for i, r in zip(ids, rows, strict=True)),
        )
        return ids
    objs = [model(**dict(zip(fields, row, strict=True))) for row in rows]
    model.objects.bulk_create(objs, batch_size=BATCH)
    return [obj.pk for obj in objs]


def update(model, pks: Sequence[int], **values) -> int:
    """UPDATE these rows (by primary key) to the same values; return the count."""
    if not pks:
        return 0
    if _postgres():
        quote = connection.ops.quote_name
        fields = {name: model._meta.get_field(name) for name in values}  # names or attnames
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields.values())
        params = [f.get_db_prep_save(values[name], connection) for name, f in fields.items()]
        # The ids as one text parameter: PostgreSQL parses 100,000 of them in
        # milliseconds, where an IN list or an adapted array costs seconds here.
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {assignments}"  # noqa: S608
            f" WHERE {quote(model._meta.pk.column)}"
            " = ANY(string_to_array(%s, ',')::bigint[])"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, ",".join(str(int(pk)) for pk in pks)])
            return cursor.rowcount
    count = 0
    for i in range(0, len(pks), BATCH):
        count += model.objects.filter(pk__in=pks[i : i + BATCH]).update(**values)
    return count
