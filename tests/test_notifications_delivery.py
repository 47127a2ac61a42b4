"""Delivering one outbox row: claim, send once, classify errors, back off, sweep."""

import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.utils import timezone

from ecp.celery import app
from notifications import delivery, outbox, tasks
from notifications.models import Kind, Notification, Status

CONTEXT = {
    "device": {
        "pk": 7,
        "device_id": "ALICEPHONE1",
        "device_type": "iPhone",
        "device_model": "iPhone15,2",
        "device_os": "iOS 17.4",
        "user_agent": "Apple-iPhone15C2/2104.61",
        "eas_version": "16.1",
        "imei": "",
        "phone_number": "",
        "access_state_display": "Blocked",
        "access_state_reason": "Individual",
        "reason_text": "the mailbox's own list of allowed or blocked devices",
        "access_rule": "",
        "page_path": "/devices/7/",
    },
    "mailbox": {"alias": "alice", "display_name": "Alice", "email": "alice@contoso.com"},
    "user_mail_insert": "",
    "my_devices_path": "/my/devices/",
    "quarantine_path": "/devices/quarantine/",
}


@pytest.fixture(autouse=True)
def eager_celery():
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture
def row(db):
    return Notification.objects.create(
        kind=Kind.USER_BLOCKED,
        recipient="alice@contoso.com",
        context=CONTEXT,
        dedupe_key="user-blocked:1:alice@contoso.com",
    )


def failing_send(exc):
    return mock.patch.object(EmailMultiAlternatives, "send", side_effect=exc)


def make_due(row):
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())


# ---------------------------------------------------------------------------
# a mail is sent once


def test_it_sends_the_mail_and_records_it(row, settings):
    settings.DEFAULT_FROM_EMAIL = "ECP <ecp@contoso.com>"

    assert delivery.deliver(row.pk).status == "sent"

    row.refresh_from_db()
    assert row.status == Status.SENT
    assert row.attempts == 1
    assert row.sent_at is not None
    assert row.last_error == ""
    assert row.subject == "Your iPhone15,2 is blocked from syncing mail"
    assert "ALICEPHONE1" in row.body_text and "ALICEPHONE1" in row.body_html
    [sent] = mail.outbox
    assert sent.to == ["alice@contoso.com"]
    assert sent.from_email == "ECP <ecp@contoso.com>"
    assert sent.subject == row.subject
    assert sent.alternatives[0].mimetype == "text/html"
    assert sent.extra_headers["Auto-Submitted"] == "auto-generated"
    assert sent.extra_headers["Message-ID"] == delivery.message_id(row)


def test_delivering_the_same_row_twice_sends_one_mail(row):
    assert delivery.deliver(row.pk).status == "sent"
    assert delivery.deliver(row.pk).status == "skipped"

    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.attempts == 1


def test_the_task_run_twice_sends_one_mail(row):
    assert tasks.send_notification(row.pk) == "sent"
    assert tasks.send_notification(row.pk) == "skipped"
    tasks.send_notification.delay(row.pk)

    assert len(mail.outbox) == 1


def test_a_batch_naming_a_row_twice_sends_it_once(row):
    assert tasks.send_batch([row.pk, row.pk, 999999]) == {"sent": 1, "skipped": 2}

    assert len(mail.outbox) == 1


def test_only_one_claim_wins(row):
    assert delivery.claim(row.pk) is not None
    assert delivery.claim(row.pk) is None


def test_a_row_stuck_in_sending_is_claimable_again_after_the_timeout(row):
    Notification.objects.filter(pk=row.pk).update(
        status=Status.SENDING, claimed_at=timezone.now() - timedelta(minutes=4)
    )
    assert delivery.deliver(row.pk).status == "skipped"

    Notification.objects.filter(pk=row.pk).update(
        claimed_at=timezone.now() - delivery.SENDING_TIMEOUT - timedelta(seconds=1)
    )
    assert delivery.deliver(row.pk).status == "sent"
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("status", [Status.HELD, Status.SENT, Status.FAILED, Status.DIGESTED])
def test_rows_that_are_not_pending_are_not_sent(row, status):
    Notification.objects.filter(pk=row.pk).update(status=status)

    assert delivery.deliver(row.pk).status == "skipped"
    assert mail.outbox == []


def test_a_missing_row_is_skipped(db):
    assert delivery.deliver(123456).status == "skipped"


def test_the_message_id_is_stable_per_row(row):
    first = delivery.message_id(row)

    assert first == delivery.message_id(Notification.objects.get(pk=row.pk))
    assert first.startswith(f"<{row.pk}.") and first.endswith("@ecp>")


def test_the_message_id_is_stored_before_the_first_attempt_and_kept(row):
    """A retry (or a re-send after a crash past the 250) carries the first attempt's id."""
    with failing_send(smtplib.SMTPServerDisconnected("gone")):
        delivery.deliver(row.pk)
    row.refresh_from_db()
    first = row.message_id
    assert first == delivery.message_id(row) != ""
    # Even if the way ids are made changed in between, the stored one is used.
    Notification.objects.filter(pk=row.pk).update(
        message_id="<kept@ecp>", next_attempt_at=timezone.now()
    )
    assert delivery.deliver(row.pk).status == "sent"
    [sent] = mail.outbox
    assert sent.extra_headers["Message-ID"] == "<kept@ecp>"


def test_a_deliberate_copy_of_a_sent_mail_is_a_new_message(row):
    assert delivery.deliver(row.pk).status == "sent"
    copy = outbox.resend(Notification.objects.get(pk=row.pk))
    assert copy.pk != row.pk
    assert delivery.deliver(copy.pk).status == "sent"
    first, second = (m.extra_headers["Message-ID"] for m in mail.outbox)
    assert first != second, "an admin's resend must not be dropped as a duplicate"


# ---------------------------------------------------------------------------
# transient and permanent errors


@pytest.mark.parametrize(
    "exc",
    [
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        smtplib.SMTPConnectError(421, b"too busy"),
        smtplib.SMTPResponseException(451, b"4.7.1 greylisted, try again"),
        smtplib.SMTPRecipientsRefused({"alice@contoso.com": (450, b"mailbox busy")}),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
    ],
    ids=["disconnected", "connect-421", "451", "recipient-450", "refused", "timeout"],
)
def test_a_transient_error_puts_the_row_back_with_a_backoff(row, exc, settings):
    settings.ECP_MAIL_BACKOFF_BASE = 30
    before = timezone.now()
    with failing_send(exc):
        outcome = delivery.deliver(row.pk)

    row.refresh_from_db()
    assert outcome.status == "retry"
    assert 15 <= outcome.retry_in <= 30
    assert row.status == Status.PENDING
    assert row.attempts == 1
    assert type(exc).__name__ in row.last_error
    assert before + timedelta(seconds=15) <= row.next_attempt_at
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=30)
    assert row.sent_at is None


def test_a_row_is_not_retried_before_its_backoff(row):
    with failing_send(smtplib.SMTPServerDisconnected("gone")):
        delivery.deliver(row.pk)

    assert delivery.deliver(row.pk).status == "skipped"
    assert tasks.deliver_pending_now() == {}
    row.refresh_from_db()
    assert row.attempts == 1


def test_attempts_are_counted_and_the_retry_succeeds(row):
    with failing_send(smtplib.SMTPServerDisconnected("gone")):
        delivery.deliver(row.pk)
        make_due(row)
        delivery.deliver(row.pk)
    make_due(row)

    assert delivery.deliver(row.pk).status == "sent"

    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 3, "")
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    "exc",
    [
        smtplib.SMTPRecipientsRefused({"alice@contoso.com": (550, b"5.1.1 no such user")}),
        smtplib.SMTPSenderRefused(553, b"5.7.1 sender rejected", "ecp@localhost"),
        smtplib.SMTPDataError(554, b"5.7.1 message refused"),
        smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
    ],
    ids=["recipient-550", "sender-553", "data-554", "auth-535"],
)
def test_a_permanent_error_fails_the_row(row, exc):
    with failing_send(exc):
        outcome = delivery.deliver(row.pk)

    row.refresh_from_db()
    assert outcome.status == "failed"
    assert row.status == Status.FAILED
    assert row.attempts == 1
    assert row.next_attempt_at is None
    assert type(exc).__name__ in row.last_error
    assert delivery.deliver(row.pk).status == "skipped"


def test_the_550_is_kept_in_the_last_error(row):
    with failing_send(
        smtplib.SMTPRecipientsRefused({"alice@contoso.com": (550, b"5.1.1 no such user")})
    ):
        delivery.deliver(row.pk)

    row.refresh_from_db()
    assert "550" in row.last_error and "no such user" in row.last_error


def test_a_row_fails_after_max_attempts(row):
    with failing_send(smtplib.SMTPServerDisconnected("gone")):
        for attempt in range(1, delivery.MAX_ATTEMPTS + 1):
            make_due(row)
            outcome = delivery.deliver(row.pk)
            expected = "failed" if attempt == delivery.MAX_ATTEMPTS else "retry"
            assert outcome.status == expected, attempt

    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert row.attempts == delivery.MAX_ATTEMPTS
    assert "SMTPServerDisconnected" in row.last_error
    make_due(row)
    assert delivery.deliver(row.pk).status == "skipped"


def test_a_resent_row_gets_a_fresh_set_of_attempts(row):
    Notification.objects.filter(pk=row.pk).update(
        status=Status.FAILED, attempts=delivery.MAX_ATTEMPTS, last_error="SMTPServerDisconnected"
    )
    outbox.resend(row)

    # A greylisting server answers 451 to the first try: that is retried, not failed.
    with failing_send(smtplib.SMTPResponseException(451, b"4.7.1 greylisted")):
        assert delivery.deliver(row.pk).status == "retry"
    make_due(row)
    assert delivery.deliver(row.pk).status == "sent"


def test_a_rendering_error_fails_the_row_instead_of_looping(row):
    with mock.patch.object(delivery, "render", side_effect=TemplateDoesNotExist("emails/x")):
        outcome = delivery.deliver(row.pk)

    row.refresh_from_db()
    assert outcome.status == "failed"
    assert row.status == Status.FAILED
    assert row.last_error.startswith("rendering failed")
    assert mail.outbox == []


# ---------------------------------------------------------------------------
# backoff


def test_backoff_doubles_per_attempt_within_its_jitter_bounds(settings):
    settings.ECP_MAIL_BACKOFF_BASE = 30
    for attempts in range(1, 12):
        ceiling = min(delivery.BACKOFF_MAX, 30 * 2 ** (attempts - 1))
        samples = [delivery.backoff(attempts) for _ in range(200)]
        assert all(ceiling // 2 <= s <= ceiling for s in samples), attempts
        assert len(set(samples)) > 1, f"no jitter at attempt {attempts}"


def test_backoff_grows_until_its_cap(settings):
    settings.ECP_MAIL_BACKOFF_BASE = 30
    lowest = [min(delivery.backoff(a) for _ in range(50)) for a in range(1, 12)]
    highest = [max(delivery.backoff(a) for _ in range(50)) for a in range(1, 12)]

    assert highest[0] <= 30
    for a in range(1, 7):  # up to 1920 s: each attempt waits at least the last one's most
        assert lowest[a] >= highest[a - 1]
        assert lowest[a] > lowest[a - 1]
    assert max(highest) <= delivery.BACKOFF_MAX
    assert lowest[-1] >= delivery.BACKOFF_MAX // 2


def test_backoff_follows_the_setting(settings):
    settings.ECP_MAIL_BACKOFF_BASE = 2

    assert all(1 <= delivery.backoff(1) <= 2 for _ in range(50))
    assert all(4 <= delivery.backoff(3) <= 8 for _ in range(50))


# ---------------------------------------------------------------------------
# the tasks with a broker


def test_the_task_retries_through_celery_with_the_backoff(row):
    with (
        mock.patch.object(tasks, "_eager", return_value=False),
        mock.patch.object(tasks.send_notification, "retry", side_effect=Retry) as retry,
        failing_send(smtplib.SMTPServerDisconnected("gone")),
        pytest.raises(Retry),
    ):
        tasks.send_notification(row.pk)

    row.refresh_from_db()
    assert row.status == Status.PENDING
    wait = (row.next_attempt_at - timezone.now()).total_seconds()
    assert retry.call_args.kwargs["countdown"] == pytest.approx(wait, abs=2)


def test_eager_tasks_leave_a_retry_to_the_sweep(row):
    with failing_send(smtplib.SMTPServerDisconnected("gone")):
        assert tasks.send_notification(row.pk) == "retry"

    row.refresh_from_db()
    assert row.status == Status.PENDING


def test_the_batch_task_schedules_a_retry_per_row(row):
    with (
        mock.patch.object(tasks, "_eager", return_value=False),
        mock.patch.object(tasks.send_notification, "apply_async") as later,
        failing_send(smtplib.SMTPServerDisconnected("gone")),
    ):
        assert tasks.send_batch([row.pk]) == {"retry": 1}

    [call] = later.call_args_list
    assert call.args == ((row.pk,),)
    assert 15 <= call.kwargs["countdown"] <= 30


# ---------------------------------------------------------------------------
# the sweep


def aged(**fields):
    fields.setdefault("created_at", timezone.now() - timedelta(minutes=5))
    n = Notification.objects.count()
    return Notification.objects.create(
        kind=Kind.USER_BLOCKED,
        recipient=f"user{n}@contoso.com",
        context=CONTEXT,
        dedupe_key=f"k{n}",
        **fields,
    )


def test_the_sweep_queues_what_is_due_and_nothing_else(db):
    due = [
        aged(),
        aged(next_attempt_at=timezone.now() - timedelta(seconds=1)),
        aged(status=Status.SENDING, claimed_at=timezone.now() - timedelta(minutes=10)),
    ]
    aged(created_at=timezone.now())  # fresh: its own task has it
    aged(next_attempt_at=timezone.now() + timedelta(minutes=1))  # backing off
    aged(status=Status.SENDING, claimed_at=timezone.now())  # being sent
    aged(status=Status.HELD, hold_until=timezone.now() - timedelta(minutes=1))  # the digest's
    for status in (Status.SENT, Status.FAILED, Status.DIGESTED):
        aged(status=status)

    with mock.patch.object(tasks.send_notification, "delay") as delay:
        assert tasks.sweep() == 3

    assert sorted(c.args[0] for c in delay.call_args_list) == sorted(r.pk for r in due)


def test_the_sweep_delivers_each_row_once(db):
    rows = [aged() for _ in range(3)]

    tasks.sweep()
    tasks.sweep()

    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.recipient for r in rows)


def test_deliver_pending_now_sends_fresh_rows_too(db):
    aged()
    aged(created_at=timezone.now())
    aged(next_attempt_at=timezone.now() + timedelta(minutes=1))

    assert tasks.deliver_pending_now() == {"sent": 2}
    assert len(mail.outbox) == 2
