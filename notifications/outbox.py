"""Write mails to the outbox and queue their delivery after commit.

Coalescing: a mail with a `coalesce_key` (what it is about, e.g. one device)
goes out at most once per kind, recipient and key every
ECP_NOTIFY_MIN_INTERVAL_MINUTES (default 60). A mail that comes sooner is
folded into the one still waiting (its context replaced by the newer one, with
a `coalesced` count), or else waits as a pending row whose first attempt is due
one interval after the previous mail; a held digest item is folded likewise.
So a device that flaps between two states cannot flood anyone (issue 16).
"""

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from .models import Channel, Notification, Status

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
    coalesce_key: str = ""  # set: coalesced with earlier mails of its kind about the same thing
    not_before: datetime | None = None  # set: the first attempt waits until then
    channel: str = Channel.MAIL  # webhook: recipient is the URL's label, target its key
    target: str = ""


def min_interval() -> timedelta:
    return timedelta(minutes=settings.ECP_NOTIFY_MIN_INTERVAL_MINUTES)


def _waiting(row: Notification) -> bool:
    """Not sent yet, nor being sent: a newer mail can still replace its context."""
    return row.status in (Status.HELD, Status.PENDING) and row.attempts == 0


def _coalesced(previous: dict | None, first_at: str, now: datetime) -> dict:
    previous = previous or {}
    return {
        "count": previous.get("count", 0) + 1,
        "first_at": previous.get("first_at", first_at),
        "last_at": now.isoformat(),
    }


def _coalesce(mails: list[Mail], now: datetime) -> list[Mail]:
    """The mails that still need a row of their own (see the module's docstring)."""
    interval = min_interval()
    keys = sorted({m.coalesce_key for m in mails if m.coalesce_key})
    if not keys or interval <= timedelta(0):
        return mails
    recent = Q(created_at__gte=now - interval) | Q(next_attempt_at__gte=now - interval)
    recent |= Q(hold_until__gte=now - interval) | Q(status__in=(Status.HELD, Status.PENDING))
    latest: dict[tuple, Notification] = {}
    for i in range(0, len(keys), _CHUNK):
        rows = Notification.objects.filter(coalesce_key__in=keys[i : i + _CHUNK]).filter(recent)
        for row in rows.order_by("created_at", "pk").only(
            *("pk", "kind", "recipient", "coalesce_key", "status", "attempts", "context"),
            *("created_at", "next_attempt_at", "hold_until"),
        ):
            latest[(row.coalesce_key, row.kind, row.recipient.lower())] = row
    out = []
    for mail in mails:
        last = latest.get((mail.coalesce_key, mail.kind, mail.recipient.lower()))
        if not mail.coalesce_key or last is None:
            out.append(mail)
            continue
        if _waiting(last):
            context = {
                **mail.context,
                "coalesced": _coalesced(
                    last.context.get("coalesced"), last.created_at.isoformat(), now
                ),
            }
            # Conditional: if a worker claimed the row meanwhile, this mail waits instead.
            folded = Notification.objects.filter(pk=last.pk, status=last.status, attempts=0).update(
                context=context
            )
            if folded:
                last.context = context
                continue
        sent_or_due = max(filter(None, (last.created_at, last.next_attempt_at, last.hold_until)))
        due = max(now, sent_or_due + interval)
        context = {**mail.context, "coalesced": _coalesced(None, now.isoformat(), now)}
        if mail.hold_until:
            out.append(replace(mail, context=context, hold_until=max(mail.hold_until, due)))
        else:
            out.append(replace(mail, context=context, not_before=due))
    return out


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
    fresh = _coalesce([m for m in mails if m.dedupe_key not in existing], now)
    rows = [
        Notification(
            kind=m.kind,
            recipient=m.recipient,
            context=m.context,
            dedupe_key=m.dedupe_key,
            coalesce_key=m.coalesce_key,
            channel=m.channel,
            target=m.target,
            status=Status.HELD if m.hold_until else Status.PENDING,
            hold_until=m.hold_until,
            next_attempt_at=m.not_before,
            created_at=now,
        )
        for m in fresh
    ]
    if not rows:
        return 0
    try:
        with transaction.atomic():  # a savepoint: a conflict below leaves nothing behind
            Notification.objects.bulk_create(rows, batch_size=_CHUNK)
    except IntegrityError:
        # Another transaction queued one of these keys since we looked: skip those.
        for row in rows:
            row.pk = None
        Notification.objects.bulk_create(rows, batch_size=_CHUNK, ignore_conflicts=True)
    # A deferred row is left to the sweep, which sends it once it is due.
    pending = [r for r in rows if r.status == Status.PENDING and r.next_attempt_at is None]
    if all(r.pk is not None for r in pending):  # the INSERT returned them
        ids = [r.pk for r in pending]
    else:
        ids = _pending_ids([r.dedupe_key for r in pending])
    hooks = {r.pk for r in rows if r.channel == Channel.WEBHOOK and r.pk is not None}
    if not all(r.pk is not None for r in rows):
        hooks = set(
            Notification.objects.filter(pk__in=ids, channel=Channel.WEBHOOK).values_list(
                "pk", flat=True
            )
        )
    # Mails first; each webhook post is a task of its own, so a slow or failing chat
    # server never holds up a mail (nor a batch of them).
    queue_after_commit([pk for pk in ids if pk not in hooks])
    queue_each_after_commit([pk for pk in ids if pk in hooks])
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


def queue_each_after_commit(ids: list[int]) -> None:
    if ids:
        transaction.on_commit(lambda: queue_each(ids))


def queue_each(ids: list[int]) -> None:
    """One task per row (webhooks): never batched with mails."""
    from . import tasks

    try:
        for pk in ids:
            tasks.send_notification.delay(pk)
    except Exception as exc:  # noqa: BLE001 - as in queue()
        log.warning("could not queue %d notification(s), the sweep will: %s", len(ids), exc)


def queue_by_channel(ids: list[int]) -> None:
    """Queue rows of either channel: mails in batches, webhooks one task each."""
    hooks = set(
        Notification.objects.filter(pk__in=ids, channel=Channel.WEBHOOK).values_list(
            "pk", flat=True
        )
    )
    queue([pk for pk in ids if pk not in hooks])
    if hooks:
        queue_each([pk for pk in ids if pk in hooks])


def annotate_waiting(coalesce_key: str, kinds: list[str], values: dict) -> int:
    """Merge `values` into the context of the rows about one thing that are not sent yet
    (pending or held for a digest), so that they say it when they go out. Returns how
    many rows were updated; a row a worker has claimed meanwhile is left as it is."""
    rows = Notification.objects.filter(
        coalesce_key=coalesce_key, kind__in=kinds, status__in=(Status.HELD, Status.PENDING)
    ).only("pk", "status", "context")
    updated = 0
    for row in rows:
        context = {**row.context, **values}
        updated += Notification.objects.filter(pk=row.pk, status=row.status, attempts=0).update(
            context=context
        )
    return updated


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
            channel=row.channel,
            target=row.target,
            context=row.context,
            dedupe_key=f"{row.dedupe_key}:resend:{copies.count() + 1}"[:200],
        )
    else:
        raise ValueError(f"a {row.get_status_display().lower()} mail cannot be resent")
    if target.channel == Channel.WEBHOOK:
        queue_each_after_commit([target.pk])
    else:
        queue_after_commit([target.pk])
    return target


# --- monitoring (/metrics) -------------------------------------------------------------

CHANNEL_MAIL = Channel.MAIL.value
# Waiting to go out: queued, or claimed by a worker and not yet answered by SMTP. Held
# rows wait for the admin digest on purpose and are not a backlog.
BACKLOG = (Status.PENDING, Status.SENDING)


def backlog_by_channel() -> dict[str, int]:
    """Rows waiting to be delivered, per channel (one indexed count)."""
    counts = dict.fromkeys(Channel.values, 0)
    rows = Notification.objects.filter(status__in=BACKLOG).values("channel").order_by()
    for channel, n in rows.annotate(n=models.Count("pk")).values_list("channel", "n"):
        counts[channel] = n
    return counts


def failed_count() -> int:
    """Rows delivery gave up on (a re-send from the sent-mail page takes one back)."""
    return Notification.objects.filter(status=Status.FAILED).count()
