"""Render rows (dicts) as an aligned table, a JSON list or CSV.

json and csv stream row by row, so a listing of a million devices does not
have to fit in memory twice; the table reads every row to size its columns.
json keeps native values (datetimes as ISO 8601); csv writes lists joined
with ';' and nested objects as JSON, through devices.csv_export (no cell a
spreadsheet would run as a formula); the table is for people: local times to
the minute, yes/no, lists joined with ', '.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from django.utils import timezone

from devices import hostile

from .. import csv_export

FORMATS = ("table", "json", "csv")


def add_format_option(parser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default, for people), json (a list of objects) or csv",
    )


def render(
    out,
    rows: Iterable[dict],
    fmt: str,
    *,
    fields: Sequence[str],
    table: Sequence[str] | None = None,
    empty: str = "Nothing found.",
    vertical: bool = False,
) -> None:
    """Write rows to out (a Django OutputWrapper: a command's stdout).

    fields: every key, in order (json and csv); table: the columns the table
    shows (default: all); vertical: the table shows one "field  value" line
    per field, for single objects such as the org settings.
    """
    if fmt == "json":
        _json(out, rows)
    elif fmt == "csv":
        _csv(out, rows, fields)
    elif vertical:
        _vertical(out, rows, table or fields)
    else:
        _table(out, rows, table or fields, empty)


def _write(out, text: str) -> None:
    out.write(text, ending="")


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(out, rows: Iterable[dict]) -> None:
    # One object per line: valid JSON that can be written while rows arrive.
    _write(out, "[")
    separator = "\n  "
    for row in rows:
        text = json.dumps(row, default=_json_default, ensure_ascii=False)
        _write(out, separator + hostile.escape_in_json(text))
        separator = ",\n  "
    _write(out, "\n]\n" if separator != "\n  " else "]\n")


class _Lines:
    """What the CSV writer needs: a write() that does not add line endings."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> None:
        _write(self.out, text)


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)
    return value


def _csv(out, rows: Iterable[dict], fields: Sequence[str]) -> None:
    writer = csv_export.writer(_Lines(out), lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_value(row.get(f)) for f in fields])


def cell(value) -> str:
    """A value as a person reads it in a table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)
    # One line per row, whatever the text holds; stored controls and bidi overrides
    # show as U+FFFD rather than reach the terminal (devices.hostile).
    return hostile.neutral(" ".join(str(value).split())) or "-"


def header(field: str) -> str:
    return field.replace("_", " ").upper()


def _table(out, rows: Iterable[dict], columns: Sequence[str], empty: str) -> None:
    lines = [[cell(row.get(c)) for c in columns] for row in rows]
    if not lines:
        out.write(empty)
        return
    lines.insert(0, [header(c) for c in columns])
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    for line in lines:
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def _vertical(out, rows: Iterable[dict], fields: Sequence[str]) -> None:
    width = max(len(header(f)) for f in fields)
    for i, row in enumerate(rows):
        if i:
            out.write("")
        for f in fields:
            out.write(f"{header(f).ljust(width)}  {cell(row.get(f))}")
