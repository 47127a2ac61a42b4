"""Notifications the admins act on: resend a mail."""

from django.db import transaction

from ..audit import Actor, record
from .base import ActionError, Result


@transaction.atomic
def resend_notification(actor: Actor, notification) -> Result:
    """Send a mail again (failed: retried; sent: copied), audited."""
    from notifications import outbox

    before = {"status": notification.status, "attempts": notification.attempts}
    try:
        target = outbox.resend(notification)
    except ValueError as exc:
        raise ActionError(str(exc).capitalize() + ".") from None
    event = record(
        actor,
        action="notification.resend",
        obj=notification,
        object_type="Notification",
        before=before,
        after={"notification": target.pk, "status": target.status},
        message=f"Mail {notification.get_kind_display().lower()} to "
        f"{notification.recipient} queued again",
    )
    return Result(target, event)
