"""Deliver one outbox row: claim it, render it, send it, record the outcome.

The claim is a conditional UPDATE (pending -> sending), so two workers, a
retried task and the sweep can all try one row and only one sends it. A row
stuck in `sending` (its worker died) becomes claimable again after
SENDING_TIMEOUT (ECP_MAIL_SENDING_TIMEOUT); a task that finds its row claimed
by such an attempt waits for that (`claim_expires_in`). Transient SMTP errors
put the row back to pending with an exponential backoff and jitter;
permanent ones, or too many attempts, fail it.

Delivery is at least once: a worker that dies after the server's 250 and
before the row says sent leaves it in `sending`, and it is sent again once
the claim is stale. The window is kept small (the row is marked sent in its
own statement right after the 250, before the connection's QUIT), and the
copy carries the same Message-ID, stored on the row before the first attempt,
so receiving systems can drop it.
"""

import contextlib
import hashlib
import json
import logging
import math
import random
import smtplib
import socket
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import F, Q
from django.utils import timezone

from . import webhooks
from .models import HIGH_PRIORITY, Channel, Notification, Status
from .rendering import render, safe_subject

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
SENDING_TIMEOUT = timedelta(seconds=settings.ECP_MAIL_SENDING_TIMEOUT)
BACKOFF_MAX = 3600  # seconds; the first retry waits settings.ECP_MAIL_BACKOFF_BASE


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, retry, failed, skipped
    retry_in: int | None = None


def backoff(attempts: int) -> int:
    """Seconds before the next try: exponential, jittered over the upper half."""
    ceiling = min(BACKOFF_MAX, settings.ECP_MAIL_BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return int(ceiling / 2 + random.uniform(0, ceiling / 2))


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(
        exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError | socket.timeout | OSError
    )


def claim(pk: int) -> Notification | None:
    now = timezone.now()
    claimable = Q(status=Status.PENDING) | Q(
        status=Status.SENDING, claimed_at__lt=now - SENDING_TIMEOUT
    )
    updated = (
        Notification.objects.filter(claimable, pk=pk)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not updated:
        return None
    return Notification.objects.get(pk=pk)


def claim_expires_in(pk: int) -> int | None:
    """Seconds until the claim of another attempt (maybe a dead worker's) on a row goes stale.

    None when the row is not being sent.
    """
    claimed_at = (
        Notification.objects.filter(pk=pk, status=Status.SENDING)
        .values_list("claimed_at", flat=True)
        .first()
    )
    if claimed_at is None:
        return None
    left = (claimed_at + SENDING_TIMEOUT - timezone.now()).total_seconds()
    return max(1, math.ceil(left) + 1)


def message_id(row: Notification) -> str:
    """The row's Message-ID: the stored one, else the one it gets at its first attempt."""
    if row.message_id:
        return row.message_id
    digest = hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:24]
    return f"<{row.pk}.{digest}@ecp>"


def _keep_message_id(row: Notification) -> str:
    """Store the Message-ID before anything is sent, so every later attempt reuses it."""
    if not row.message_id:
        row.message_id = message_id(row)
        Notification.objects.filter(pk=row.pk, message_id="").update(message_id=row.message_id)
    return row.message_id


def deliver(pk: int, connection=None) -> Outcome:
    """Send one outbox row. `connection`: an open mail connection to reuse (a batch's);
    after a failure it is closed, and the next send through it opens a new one."""
    row = claim(pk)
    if row is None:
        return Outcome("skipped")
    if row.channel == Channel.WEBHOOK:
        return deliver_webhook(row)
    try:
        subject, text, html = render(row.kind, row.context)
    except Exception as exc:  # noqa: BLE001 - a template bug must not loop forever
        log.exception("notification %s could not be rendered", pk)
        return _finish(row, Status.FAILED, error=f"rendering failed: {exc}")
    # Our own connection unless the batch lends one: the send must not QUIT before
    # the row is marked sent (a QUIT that hangs or fails after the 250 is no failure).
    own = connection is None
    if own:
        connection = get_connection()
    mail = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[row.recipient],
        headers=_headers(row),
        connection=connection,
    )
    mail.attach_alternative(html, "text/html")
    try:
        connection.open()
        mail.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - classified below
        close_quietly(connection)  # the next mail opens a new one
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if is_transient(exc) and row.attempts < MAX_ATTEMPTS:
            delay = backoff(row.attempts)
            log.warning("notification %s: transient error, retry in %ss: %s", pk, delay, error)
            return _finish(row, Status.PENDING, error=error, retry_in=delay)
        log.error("notification %s failed: %s", pk, error)
        return _finish(row, Status.FAILED, error=error)
    # The server said 250: say so first, in one statement of its own (autocommit).
    Notification.objects.filter(pk=pk, status=Status.SENDING).update(
        status=Status.SENT,
        sent_at=timezone.now(),
        subject=subject,
        body_text=text,
        body_html=html,
        last_error="",
    )
    if own:
        close_quietly(connection)
    return Outcome("sent")


def _headers(row: Notification) -> dict:
    headers = {"Message-ID": _keep_message_id(row), "Auto-Submitted": "auto-generated"}
    if row.kind in HIGH_PRIORITY:
        # Outlook reads Importance, most other clients X-Priority (1: highest).
        headers.update({"X-Priority": "1 (Highest)", "Importance": "high", "Priority": "urgent"})
    return headers


def deliver_webhook(row: Notification) -> Outcome:
    """Post a claimed webhook row; the same outcomes, retries and backoff as a mail."""
    hook = webhooks.by_key(row.target)
    if hook is None:
        return _finish(row, Status.FAILED, error="this webhook is no longer in ECP_WEBHOOK_URLS")
    try:
        subject, body = webhooks.payload(hook, row.kind, row.context)
    except Exception as exc:  # noqa: BLE001 - a bug must not loop forever
        log.exception("webhook post %s could not be built", row.pk)
        return _finish(row, Status.FAILED, error=f"rendering failed: {exc}")
    try:
        webhooks.post(hook, body, idempotency_key=_keep_message_id(row).strip("<>"))
    except webhooks.WebhookError as exc:
        error = str(exc)[:2000]
        if exc.transient and row.attempts < MAX_ATTEMPTS:
            delay = max(backoff(row.attempts), min(exc.retry_after or 0, BACKOFF_MAX))
            log.warning("webhook post %s: transient error, retry in %ss: %s", row.pk, delay, error)
            return _finish(row, Status.PENDING, error=error, retry_in=delay)
        log.error("webhook post %s failed: %s", row.pk, error)
        return _finish(row, Status.FAILED, error=error)
    Notification.objects.filter(pk=row.pk, status=Status.SENDING).update(
        status=Status.SENT,
        sent_at=timezone.now(),
        subject=safe_subject(subject),
        body_text=json.dumps(body, indent=2, ensure_ascii=False),
        last_error="",
    )
    return Outcome("sent")


def close_quietly(connection) -> None:
    """Close a mail connection, whatever state a failure left it in."""
    with contextlib.suppress(Exception):  # broken already: nothing left to close
        connection.close()
    connection.connection = None


def _finish(row: Notification, status: str, *, error: str, retry_in: int | None = None):
    next_at = timezone.now() + timedelta(seconds=retry_in) if retry_in is not None else None
    Notification.objects.filter(pk=row.pk, status=Status.SENDING).update(
        status=status, last_error=error, next_attempt_at=next_at
    )
    return Outcome("failed" if status == Status.FAILED else "retry", retry_in)
