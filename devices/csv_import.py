"""Read a CSV file the way PowerShell's Export-Csv writes it: rows with line numbers.

Export-Csv starts with a `#TYPE ...` line unless -NoTypeInformation is given,
writes UTF-8 with a BOM, UTF-16 ("-Encoding Unicode") or the ANSI code page
depending on the PowerShell version and options, and separates fields with
the culture's list separator under -UseCulture (';' in much of Europe). All of
that is accepted here. Interpreting the columns is devices.actions.imports'
job; this module only turns bytes into rows.
"""

import csv
import io

_DELIMITERS = (",", ";", "\t")


class CsvError(ValueError):
    """The file cannot be read as CSV at all; the message is for people."""


class Row(dict):
    """One data row, column name (as written in the header) -> value, and its line number."""

    def __init__(self, values, line: int):
        super().__init__(values)
        self.line = line


def decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Windows PowerShell's "-Encoding Default": the ANSI code page.
        return data.decode("cp1252", errors="replace")


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_rows(data: bytes) -> list[Row]:
    """The file's data rows; blank lines and a leading #TYPE line are skipped."""
    try:
        text = decode(data)
    except UnicodeDecodeError as exc:
        raise CsvError(f"the file is neither UTF-8 nor UTF-16 text ({exc.reason}).") from None
    lines = io.StringIO(text, newline="")
    first_line = 1
    header_line = lines.readline()
    while header_line and (not header_line.strip() or header_line.startswith("#")):
        # "#TYPE Microsoft.Exchange.Data.Directory.Management.CASMailbox", or blank.
        first_line += 1
        header_line = lines.readline()
    if not header_line.strip():
        raise CsvError("the file has no header line.")
    reader = csv.reader(
        io.StringIO(header_line + lines.read(), newline=""), delimiter=_delimiter(header_line)
    )
    try:
        header = [name.strip() for name in next(reader)]
        seen = set()
        for name in header:
            if not name:
                raise CsvError(f"line {first_line}: the header has an empty column name.")
            if name.lower() in seen:
                raise CsvError(f"line {first_line}: the header names {name!r} twice.")
            seen.add(name.lower())
        rows, too_long = [], []
        end = reader.line_num
        for values in reader:
            line = first_line + end  # where this record starts
            end = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                too_long.append(f"line {line}: {len(values)} values for {len(header)} columns")
                continue
            values += [""] * (len(header) - len(values))
            rows.append(Row(zip(header, (v.strip() for v in values), strict=True), line))
    except csv.Error as exc:
        raise CsvError(f"line {first_line + reader.line_num - 1}: {exc}.") from None
    if too_long:
        raise CsvError("; ".join(too_long) + " (a separator inside a value that is not quoted?).")
    return rows
