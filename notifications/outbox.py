"""Write mails to the outbox and queue their delivery after commit."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Notification, Status

log = logging.getLogger(__name__)

_CHUNK = 1000
# Larger groups of new mails are handed to the worker in batches, not one task each.
BATCH_SIZE = 50


@dataclass(frozen=True)
class Mail:
    kind: str
    recipient: str
    context: dict
    dedupe_key: str
    hold_until: datetime | None = None  # set: held for a digest until then


def enqueue(mails: list[Mail]) -> int:
    """Add mails to the outbox in the current transaction; a known dedupe key is skipped.

    Delivery is queued only after the transaction commits, so a rolled-back
    change never sends mail, and a mail is never sent for a row that does not
    exist yet. Returns how many rows were new.
    """
    if not mails:
        return 0
    now = timezone.now()
    keys = [m.dedupe_key for m in mails]
    existing = set()
    for i in range(0, len(keys), _CHUNK):
        existing.update(
            Notification.objects.filter(dedupe_key__in=keys[i : i + _CHUNK]).values_list(
                "dedupe_key", flat=True
            )
        )
    rows = [
        Notification(
            kind=m.kind,
            recipient=m.recipient,
            context=m.context,
            dedupe_key=m.dedupe_key,
            status=Status.HELD if m.hold_until else Status.PENDING,
            hold_until=m.hold_until,
            created_at=now,
        )
        for m in mails
        if m.dedupe_key not in existing
    ]
    try:
        with transaction.atomic():  # a savepoint: a conflict below leaves nothing behind
            Notification.objects.bulk_create(rows, batch_size=_CHUNK)
    except IntegrityError:
        # Another transaction queued one of these keys since we looked: skip those.
        for row in rows:
            row.pk = None
        Notification.objects.bulk_create(rows, batch_size=_CHUNK, ignore_conflicts=True)
    pending = [r for r in rows if r.status == Status.PENDING]
    if all(r.pk is not None for r in pending):  # the INSERT returned them
        ids = [r.pk for r in pending]
    else:
        ids = _pending_ids([r.dedupe_key for r in pending])
    queue_after_commit(ids)
    return len(rows)


def _pending_ids(keys: list[str]) -> list[int]:
    # Filtering on the status here would lead PostgreSQL to the status index, which
    # holds every pending row: seconds per chunk after a burst of 100,000.
    ids = []
    for i in range(0, len(keys), _CHUNK):
        rows = Notification.objects.filter(dedupe_key__in=keys[i : i + _CHUNK])
        ids += [pk for pk, status in rows.values_list("pk", "status") if status == Status.PENDING]
    return ids


def queue_after_commit(ids: list[int]) -> None:
    if ids:
        transaction.on_commit(lambda: queue(ids))


def queue(ids: list[int]) -> None:
    """Hand rows to the worker. A broker outage is logged, never raised: the sweep retries."""
    from . import tasks

    try:
        if len(ids) <= BATCH_SIZE // 5:
            for pk in ids:
                tasks.send_notification.delay(pk)
        else:
            for i in range(0, len(ids), BATCH_SIZE):
                tasks.send_batch.delay(list(ids[i : i + BATCH_SIZE]))
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds; all mean "later"
        log.warning("could not queue %d notification(s), the sweep will: %s", len(ids), exc)


@transaction.atomic
def resend(notification: Notification) -> Notification:
    """Send a mail again: a failed or pending row is retried, a sent one is copied."""
    row = Notification.objects.select_for_update().get(pk=notification.pk)
    if row.status in (Status.FAILED, Status.PENDING):
        # A fresh set of attempts: a row that failed after MAX_ATTEMPTS would
        # otherwise fail again at the first transient error (e.g. greylisting).
        row.status = Status.PENDING
        row.attempts = 0
        row.next_attempt_at = None
        row.last_error = ""
        row.save(update_fields=["status", "attempts", "next_attempt_at", "last_error"])
        target = row
    elif row.status == Status.SENT:
        copies = Notification.objects.filter(dedupe_key__startswith=row.dedupe_key + ":resend:")
        target = Notification.objects.create(
            kind=row.kind,
            recipient=row.recipient,
            context=row.context,
            dedupe_key=f"{row.dedupe_key}:resend:{copies.count() + 1}"[:200],
        )
    else:
        raise ValueError(f"a {row.get_status_display().lower()} mail cannot be resent")
    queue_after_commit([target.pk])
    return target
