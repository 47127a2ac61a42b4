"""The Sent mail page (/notifications/) and its Resend button.

Organization Management may read it and resend; Help Desk and end users may not.
"""

from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.test import Client

from devices.models import AuditEvent
from ecp.celery import app
from notifications import tasks
from notifications.models import Kind, Notification, Status

PAGE = "/notifications/"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def eager_celery():
    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


def login(username, group=None) -> Client:
    user = User.objects.create_user(username, f"{username}@contoso.com", "pw")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def manager(db):
    return login("olivia", "Organization Management")


@pytest.fixture
def helpdesk(db):
    return login("harry", "Help Desk")


@pytest.fixture
def enduser(db):
    return login("alice")


def notification(status, recipient="alice@contoso.com", **fields):
    n = Notification.objects.count()
    return Notification.objects.create(
        kind=fields.pop("kind", Kind.USER_QUARANTINED),
        recipient=recipient,
        context={
            "device": {
                **dict.fromkeys(["device_model", "device_os", "user_agent", "eas_version"], ""),
                "device_id": f"PHONE{n}",
                "device_type": "iPhone",
                "access_state_display": "Quarantined",
                "access_state_reason": "Global",
                "reason_text": "the organisation's default access level",
                "page_path": "/devices/1/",
            },
            "mailbox": {"alias": "alice", "display_name": "Alice", "email": recipient},
            "user_mail_insert": "",
            "my_devices_path": "/my/devices/",
            "quarantine_path": "/devices/quarantine/",
        },
        dedupe_key=f"{Kind.USER_QUARANTINED}:{n}:{recipient}",
        status=status,
        **fields,
    )


@pytest.fixture
def failed(db):
    return notification(
        Status.FAILED,
        recipient="bob@contoso.com",
        attempts=3,
        last_error="SMTPRecipientsRefused: {'bob@contoso.com': (550, b'5.1.1 no such user')}",
    )


@pytest.fixture
def sent(db):
    return notification(Status.SENT, recipient="carol@contoso.com", attempts=1, subject="Hello")


def test_the_migration_grants_organization_management_the_page(db):
    group = Group.objects.get(name="Organization Management")

    codenames = set(group.permissions.values_list("codename", flat=True))

    assert {"view_notification", "change_notification"} <= codenames


def test_it_lists_rows_with_status_attempts_and_last_error(manager, failed, sent):
    notification(Status.PENDING, recipient="dave@contoso.com")

    response = manager.get(PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    for address in ("bob@contoso.com", "carol@contoso.com", "dave@contoso.com"):
        assert address in page
    assert ">Failed</span>" in page
    assert ">Sent</span>" in page
    assert ">Pending</span>" in page
    assert "<td>3</td>" in page
    assert "5.1.1 no such user" in page
    assert f'action="/notifications/{failed.pk}/resend"' in page


def test_it_filters_by_status_and_recipient(manager, failed, sent):
    page = manager.get(PAGE, {"status": "failed"}).content.decode()
    assert "bob@contoso.com" in page and "carol@contoso.com" not in page

    page = manager.get(PAGE, {"q": "CAROL"}).content.decode()
    assert "carol@contoso.com" in page and "bob@contoso.com" not in page


def test_the_last_error_is_escaped(manager):
    notification(Status.FAILED, last_error="554 <script>alert(1)</script>")

    page = manager.get(PAGE).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_held_and_digested_rows_have_no_resend_button(manager):
    held = notification(Status.HELD, kind=Kind.ADMIN_QUARANTINED)
    digested = notification(Status.DIGESTED, kind=Kind.ADMIN_QUARANTINED)

    page = manager.get(PAGE).content.decode()

    assert f"/notifications/{held.pk}/resend" not in page
    assert f"/notifications/{digested.pk}/resend" not in page


def test_it_is_403_for_help_desk(helpdesk, failed):
    assert helpdesk.get(PAGE).status_code == 403


def test_it_is_403_for_an_end_user(enduser, failed):
    assert enduser.get(PAGE).status_code == 403


def test_it_sends_anonymous_visitors_to_sign_in(db):
    response = Client().get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/notifications/")


# ---------------------------------------------------------------------------
# Resend


def resend_url(n) -> str:
    return f"/notifications/{n.pk}/resend"


def test_resend_requeues_a_failed_row_and_audits_it(
    manager, failed, django_capture_on_commit_callbacks
):
    with (
        mock.patch.object(tasks.send_notification, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = manager.post(resend_url(failed))

    assert response.status_code == 302
    assert response["Location"] == PAGE
    failed.refresh_from_db()
    assert failed.status == Status.PENDING
    assert failed.last_error == ""
    assert failed.next_attempt_at is None
    # A fresh set of attempts, so a greylisting server's first 451 is retried.
    assert failed.attempts == 0
    delay.assert_called_once_with(failed.pk)
    event = AuditEvent.objects.get(action="notification.resend")
    assert event.source == "ui"
    assert event.actor_name == "olivia"
    assert event.object_type == "Notification"
    assert event.object_id == str(failed.pk)
    assert event.before == {"status": "failed", "attempts": 3}
    assert event.after == {"notification": failed.pk, "status": "pending"}


def test_a_resent_failed_row_is_delivered(manager, failed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        manager.post(resend_url(failed))

    failed.refresh_from_db()
    assert failed.status == Status.SENT
    assert [m.to for m in mail.outbox] == [["bob@contoso.com"]]


def test_resend_copies_a_sent_row(manager, sent, django_capture_on_commit_callbacks):
    with (
        mock.patch.object(tasks.send_notification, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        manager.post(resend_url(sent))
        manager.post(resend_url(sent))

    sent.refresh_from_db()
    assert sent.status == Status.SENT
    copies = Notification.objects.exclude(pk=sent.pk).order_by("pk")
    assert [c.dedupe_key for c in copies] == [
        f"{sent.dedupe_key}:resend:1",
        f"{sent.dedupe_key}:resend:2",
    ]
    assert all(
        (c.kind, c.recipient, c.context, c.status, c.attempts)
        == (sent.kind, sent.recipient, sent.context, Status.PENDING, 0)
        for c in copies
    )
    assert sorted(c.args[0] for c in delay.call_args_list) == [c.pk for c in copies]
    events = AuditEvent.objects.filter(action="notification.resend", source="ui")
    assert [e.after["notification"] for e in events.order_by("pk")] == [c.pk for c in copies]


def test_a_held_row_cannot_be_resent(manager):
    held = notification(Status.HELD, kind=Kind.ADMIN_QUARANTINED)

    response = manager.post(resend_url(held), follow=True)

    assert response.status_code == 200
    assert "cannot be resent" in response.content.decode()
    held.refresh_from_db()
    assert held.status == Status.HELD
    assert not AuditEvent.objects.filter(action="notification.resend").exists()


def test_resend_rejects_get(manager, failed):
    response = manager.get(resend_url(failed))

    assert response.status_code == 405
    failed.refresh_from_db()
    assert failed.status == Status.FAILED


def test_resend_is_403_for_help_desk_and_end_users(helpdesk, enduser, failed):
    assert helpdesk.post(resend_url(failed)).status_code == 403
    assert enduser.post(resend_url(failed)).status_code == 403

    failed.refresh_from_db()
    assert failed.status == Status.FAILED
    assert not AuditEvent.objects.exists()


def test_resend_of_an_unknown_row_is_404(manager):
    assert manager.post("/notifications/999999/resend").status_code == 404


def test_resend_needs_the_csrf_token(db):
    user = User.objects.create_user("olivia", "olivia@contoso.com", "pw")
    user.groups.add(Group.objects.get(name="Organization Management"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    failed = notification(Status.FAILED)

    assert client.post(resend_url(failed)).status_code == 403
    failed.refresh_from_db()
    assert failed.status == Status.FAILED
