"""The outbox: one row per mail, written in the transaction that causes it.

Never imports devices: callers hand it a ready, JSON-serialisable context.
Delivery state lives here (status, attempts, last error), so a lost task, a
dead worker or a broker outage never loses a mail: the sweep finds the row.
"""

from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    USER_QUARANTINED = "user-quarantined", "User: device quarantined"
    USER_BLOCKED = "user-blocked", "User: device blocked"
    USER_NEW_DEVICE = "user-new-device", "User: new device partnership"
    USER_APPROVED = "user-approved", "User: device approved"
    ADMIN_QUARANTINED = "admin-quarantined", "Admin: device quarantined"
    ADMIN_DIGEST = "admin-digest", "Admin: digest of quarantined devices"
    ADMIN_SELF_APPROVED = "admin-self-approved", "Admin: a user approved their own device"
    ADMIN_NOT_MINE = "admin-not-mine", "Admin: a user says a device is not theirs"
    USER_NOT_MINE = "user-not-mine", "User: device blocked, change your password"
    WEBHOOK_QUARANTINED = "webhook-quarantined", "Chat: device quarantined"
    WEBHOOK_TEST = "webhook-test", "Chat: test message"


# Sent with X-Priority 1 and Importance: high (a stolen password shows up here first).
HIGH_PRIORITY = frozenset({Kind.ADMIN_NOT_MINE})


class Channel(models.TextChoices):
    MAIL = "mail", "Mail"
    WEBHOOK = "webhook", "Chat webhook"


class Status(models.TextChoices):
    HELD = "held", "Held for the digest"
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    DIGESTED = "digested", "Sent in a digest"


class Notification(models.Model):
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Mail: the address. Webhook: the URL's label (host and key, never the URL, which is
    # a secret); `target` then names the URL in ECP_WEBHOOK_URLS (notifications.webhooks).
    recipient = models.EmailField(max_length=254)
    channel = models.CharField(
        max_length=8, choices=Channel.choices, default=Channel.MAIL, db_default=Channel.MAIL
    )
    target = models.CharField(max_length=64, blank=True, default="", db_default="")
    context = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=200, unique=True)
    # What the mail is about (e.g. "device:42"): mails of one kind to one recipient
    # about one thing are coalesced (notifications.outbox, ECP_NOTIFY_MIN_INTERVAL_MINUTES).
    coalesce_key = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    subject = models.CharField(max_length=300, blank=True, default="")
    body_text = models.TextField(blank=True, default="")
    body_html = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Chosen at the first attempt and kept for every later one (a retry, a re-send
    # after a worker died past the SMTP 250), so receiving systems drop the copy.
    message_id = models.CharField(max_length=255, blank=True, default="")
    hold_until = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["status", "hold_until"]),
            models.Index(
                fields=["coalesce_key", "created_at"],
                condition=~models.Q(coalesce_key=""),
                name="notification_coalesce_idx",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient} ({self.status})"
