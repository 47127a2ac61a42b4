"""Celery tasks: deliver rows, sweep what is left pending, send admin digests.

With no broker configured the tasks run in-process after commit (eager);
a transient failure then waits for the next sweep (`eas send-pending`).
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import delivery
from .models import Kind, Notification, Status

log = logging.getLogger(__name__)

SWEEP_GRACE = timedelta(seconds=30)  # fresh rows belong to their own task first
SWEEP_LIMIT = 5000


def _eager(task) -> bool:
    return bool(task.app.conf.task_always_eager)


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def send_notification(self, pk: int) -> str:
    outcome = delivery.deliver(pk)
    if outcome.status == "retry" and not _eager(self):
        raise self.retry(countdown=outcome.retry_in)
    if outcome.status == "skipped" and not _eager(self):
        # Redelivered after its worker died mid-send: wait for that claim to go stale.
        wait = delivery.claim_expires_in(pk)
        if wait is not None:
            raise self.retry(countdown=wait)
    return outcome.status


@shared_task(bind=True, acks_late=True, ignore_result=True)
def send_batch(self, pks: list[int]) -> dict:
    """Deliver rows, over one SMTP connection for the batch where the backend is SMTP."""
    counts: dict[str, int] = {}
    connection = _batch_connection()
    try:
        for pk in pks:
            outcome = delivery.deliver(pk, connection and _opened(connection))
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            if outcome.status == "retry" and not _eager(self):
                send_notification.apply_async((pk,), countdown=outcome.retry_in)
            if outcome.status == "skipped" and not _eager(self):
                wait = delivery.claim_expires_in(pk)
                if wait is not None:
                    send_notification.apply_async((pk,), countdown=wait)
    finally:
        if connection is not None:
            delivery.close_quietly(connection)
    return counts


def _batch_connection():
    """An SMTP connection to share across a batch: one handshake instead of one per
    mail. Other backends (files, memory) keep one connection per mail, as before."""
    connection = get_connection()
    return connection if isinstance(connection, SMTPBackend) else None


def _opened(connection):
    """The batch's connection, opened if it is not (first mail, or after a failure).
    If it cannot be opened, None: the mail opens its own, whose error is classified."""
    if connection.connection is None:
        try:
            connection.open()
        except Exception:  # noqa: BLE001 - deliver() sees and classifies the same error
            return None
    return connection


def due_rows(grace: timedelta = SWEEP_GRACE):
    """Rows whose delivery is due: pending past their backoff, or stuck in sending."""
    now = timezone.now()
    return Notification.objects.filter(
        Q(status=Status.PENDING, created_at__lte=now - grace)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        | Q(status=Status.SENDING, claimed_at__lt=now - delivery.SENDING_TIMEOUT)
    )


@shared_task(ignore_result=True)
def sweep() -> int:
    """Queue every row left pending (lost task, broker outage) or stuck in sending."""
    from .outbox import queue_by_channel

    pks = list(due_rows().order_by("created_at").values_list("pk", flat=True)[:SWEEP_LIMIT])
    if pks:
        log.info("sweep: queueing %d notification(s)", len(pks))
        queue_by_channel(pks)
    return len(pks)


def deliver_pending_now() -> dict:
    """Send every due row in this process: `eas send-pending` without a broker."""
    counts: dict[str, int] = {}
    # Mails before webhook posts: a chat server that hangs holds up no mail.
    pks = (
        due_rows(grace=timedelta(0)).order_by("channel", "created_at").values_list("pk", flat=True)
    )
    for pk in list(pks[:SWEEP_LIMIT]):
        outcome = delivery.deliver(pk)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


@shared_task(ignore_result=True)
def send_digests(force: bool = False) -> int:
    """Fold held admin mails into one digest per recipient once the oldest is due."""
    from .outbox import queue_after_commit

    now = timezone.now()
    held = Notification.objects.filter(status=Status.HELD)
    due = held if force else held.filter(hold_until__lte=now)
    made = 0
    with transaction.atomic():
        for recipient in due.values_list("recipient", flat=True).distinct().order_by():
            items = list(
                held.filter(recipient=recipient).select_for_update().order_by("created_at", "pk")
            )
            if not items:
                continue
            digest = Notification.objects.create(
                kind=Kind.ADMIN_DIGEST,
                recipient=recipient,
                context={
                    "count": len(items),
                    "items": [n.context for n in items],
                    # The held mails' own language and zone (the organisation's).
                    "language": items[-1].context.get("language"),
                    "time_zone": items[-1].context.get("time_zone"),
                },
                dedupe_key=f"{Kind.ADMIN_DIGEST}:{recipient.lower()}:{items[0].pk}-{items[-1].pk}",
            )
            Notification.objects.filter(pk__in=[n.pk for n in items]).update(
                status=Status.DIGESTED, digest=digest
            )
            queue_after_commit([digest.pk])
            made += 1
    return made
