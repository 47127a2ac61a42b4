"""How far a long job has come, told from inside its transaction.

A rule change or an import runs in one transaction, so a progress column it
wrote itself would stay invisible until the end. The job runner opens
`reporting(model, pk)`; code deep inside (reevaluate, the imports) calls
`step(done, total)` within the current `span`, and the percentage goes to the
job's row through a second, autocommitting connection. On SQLite, which has
one writer at a time, the figure is written only between transactions.
Outside a job every call here does nothing.
"""

import contextlib
import contextvars
import logging

from django.db import DEFAULT_DB_ALIAS, connections

log = logging.getLogger(__name__)

_current = contextvars.ContextVar("ecp_progress", default=None)


class _Reporter:
    def __init__(self, model, pk):
        self.table, self.pk = model._meta.db_table, pk
        self.low, self.high = 0.0, 1.0
        self.written = -1
        self.connection = None

    def write(self, fraction: float) -> None:
        percent = max(0, min(99, int(100 * (self.low + (self.high - self.low) * fraction))))
        if percent <= self.written:
            return
        main = connections[DEFAULT_DB_ALIAS]
        if main.vendor == "sqlite" and main.in_atomic_block:
            return  # a second writer would wait for this very transaction
        try:
            if self.connection is None:
                self.connection = connections.create_connection(DEFAULT_DB_ALIAS)
            with self.connection.cursor() as cursor:
                if self.connection.vendor == "postgresql":
                    # Never wait behind a lock on the job's row: skip this figure instead.
                    cursor.execute("SET lock_timeout = '1s'")
                cursor.execute(
                    f"UPDATE {self.table} SET progress = %s WHERE id = %s",  # noqa: S608
                    [percent, self.pk],
                )
            self.written = percent
        except Exception:  # progress is a courtesy: never fail the job for it
            log.warning("could not record the progress of job %s", self.pk, exc_info=True)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


@contextlib.contextmanager
def reporting(model, pk):
    """Within this block, step() and span() report to the job `pk` of `model`."""
    reporter = _Reporter(model, pk)
    token = _current.set(reporter)
    try:
        yield reporter
    finally:
        _current.reset(token)
        reporter.close()


@contextlib.contextmanager
def span(low: float, high: float):
    """The steps inside this block fill the part low..high of the current span."""
    reporter = _current.get()
    if reporter is None:
        yield
        return
    outer = reporter.low, reporter.high
    width = outer[1] - outer[0]
    reporter.low, reporter.high = outer[0] + width * low, outer[0] + width * high
    try:
        yield
    finally:
        reporter.write(1.0)
        reporter.low, reporter.high = outer


def step(done: int, total: int) -> None:
    reporter = _current.get()
    if reporter is not None and total > 0:
        reporter.write(done / total)
