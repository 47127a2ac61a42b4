"""send-pending: the mail sweep, for installations without a Celery broker."""

from notifications.tasks import deliver_pending_now, send_digests

from . import add_verb


def register(verbs) -> None:
    p = add_verb(
        verbs,
        "send-pending",
        send_pending,
        "Send every mail still pending (failed attempts past their backoff, mails queued "
        "while SMTP was down) and the admin digests that are due. With a Celery broker, "
        "beat does this every minute; without one, run this from cron.",
    )
    p.add_argument(
        "--digests-now",
        action="store_true",
        help="Send the held admin digests now instead of when they are due.",
    )


def send_pending(out, args) -> None:
    digests = send_digests(force=args.digests_now)
    counts = deliver_pending_now()
    sent, retry, failed = (counts.get(k, 0) for k in ("sent", "retry", "failed"))
    out.write(
        f"{sent} sent, {retry} to retry later, {failed} failed"
        + (f" ({digests} digest{'s' if digests != 1 else ''} made)" if digests else "")
    )
