"""send-pending: the mail sweep, for installations without a Celery broker;
test-webhook: one sample post to each chat webhook."""

from notifications import webhooks
from notifications.tasks import deliver_pending_now, send_digests

from . import CliError, add_verb


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

    add_verb(
        verbs,
        "test-webhook",
        test_webhook,
        "Post one sample quarantine message to every URL in ECP_WEBHOOK_URLS, now, through "
        "the outbox (the Sent page shows it). Exits non-zero if any post failed.",
    )


def test_webhook(out, args) -> None:
    hooks = webhooks.configured()
    if not hooks:
        raise CliError("ECP_WEBHOOK_URLS is not set: there is no webhook to test.")
    failed = []
    for hook in hooks:
        row, outcome = webhooks.send_test(hook)
        if outcome.status == "sent":
            out.write(f"{hook.label}: sent")
        else:
            later = " (the outbox retries it)" if outcome.status == "retry" else ""
            out.write(f"{hook.label}: not delivered: {row.last_error}{later}")
            failed.append(hook.label)
    if failed:
        raise CliError(f"{len(failed)} of {len(hooks)} webhook(s) failed.")


def send_pending(out, args) -> None:
    digests = send_digests(force=args.digests_now)
    counts = deliver_pending_now()
    sent, retry, failed = (counts.get(k, 0) for k in ("sent", "retry", "failed"))
    out.write(
        f"{sent} sent, {retry} to retry later, {failed} failed"
        + (f" ({digests} digest{'s' if digests != 1 else ''} made)" if digests else "")
    )
