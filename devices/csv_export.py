"""The one CSV writer of every export (the CLI's --format csv, the web's audit export).

Device-supplied strings (DeviceId, model, User-Agent, a request id taken from
X-Request-ID) end up in these files, and a spreadsheet runs a cell that starts
with '=', '+', '-' or '@' as a formula (tab and CR start one too, after the
spreadsheet strips them). Such a cell is written with a leading apostrophe,
which spreadsheets show as text and do not run. Numbers stay numbers. A control
or bidi-override character already stored is written as U+FFFD (devices.hostile).
"""

import csv

from . import hostile

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A cell no spreadsheet will read as a formula: '' for None, "'=..." for '=...'."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    # No control (CR, LF and tab included) or bidi override reaches the file: each one
    # a visible U+FFFD. A tab or CR that started a cell then starts no formula either.
    text = hostile.neutral(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class SafeWriter:
    """csv.writer, with every cell of every row (the header too) through safe_cell."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row):
        return self._writer.writerow([safe_cell(value) for value in row])


def writer(out, **options) -> SafeWriter:
    """The only way an export writes CSV: `writer(out, lineterminator="\\n")`."""
    return SafeWriter(out, **options)
